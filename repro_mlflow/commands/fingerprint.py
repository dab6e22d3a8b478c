"""`repro fingerprint`: this machine's fingerprint as JSON."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from ..fingerprint import capture, hashes

    record = capture()
    record["hashes"] = hashes(record)
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0



def register(sub) -> None:
    f = sub.add_parser("fingerprint", help="print this machine's fingerprint as JSON")
    f.set_defaults(func=run)
