"""`python -m repro_mlflow.fingerprint [--tags]`: this machine's fingerprint as JSON, stdlib only
(for workers and GPU hosts without mlflow; `repro fingerprint` is the full command)."""

import argparse
import json
import sys

from . import capture, to_tags

p = argparse.ArgumentParser(prog="python -m repro_mlflow.fingerprint", description=__doc__)
p.add_argument("--tags", action="store_true", help="print the repro.* tags instead of the record")
args = p.parse_args()
record = capture()
json.dump(to_tags(record) if args.tags else record, sys.stdout, indent=2, sort_keys=True)
print()
