"""`repro fingerprint`: this machine's fingerprint, or what differs between two records."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(path: str) -> dict:
    from ..errors import ReproError

    p = Path(path)
    if not p.is_file():
        raise ReproError(f"no such fingerprint file: {path}")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReproError(f"{path} is not a fingerprint JSON file ({e.__class__.__name__})") from None
    if not isinstance(data, dict) or not ({"cpu", "software"} & data.keys()):
        raise ReproError(f"{path} is not a fingerprint record (no cpu/software sections)")
    return data


def run(args: argparse.Namespace) -> int:
    from ..fingerprint import capture, to_tags
    from ..fingerprint.diff import diff, render

    if args.diff:
        a, b = (_load(p) for p in args.diff)
        print(render(diff(a, b), *args.diff))
        return 0
    record = capture()
    out = to_tags(record) if args.tags else record
    text = json.dumps(out, indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.output} (repro.fp.hw={record['hashes']['hw']} sw={record['hashes']['sw']} "
              f"env={record['hashes']['env']})", file=sys.stderr)
    else:
        print(text)
    return 0


def register(sub) -> None:
    f = sub.add_parser("fingerprint", help="print this machine's fingerprint (JSON), or diff two records",
                       description="Print this machine's fingerprint record as JSON (the same record a run "
                                   "logs as repro/fingerprint.json), its repro.* tags, or what differs "
                                   "between two saved records.")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--tags", action="store_true", help="print the repro.* tags a run would get")
    g.add_argument("--diff", nargs=2, metavar=("A.json", "B.json"), help="say what differs between two records")
    f.add_argument("-o", "--output", metavar="FILE", help="write the record to FILE instead of stdout")
    f.set_defaults(func=run)
