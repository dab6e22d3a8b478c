"""`repro`: fingerprint, status, sync, logs, analyze. Each subcommand lives in `repro_mlflow.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .commands import MODULES
from .quickexit import end_program, heavy


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="repro", description="Test ML experiments for irreproducibility across hardware and software, on MLflow.")
    p.add_argument("--version", action="version", version=f"repro-mlflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in MODULES:
        try:
            module = importlib.import_module(f"repro_mlflow.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"repro_mlflow.commands.{name}":
                raise
            continue  # not built yet
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run `repro`; errors are one line on stderr and exit 1 (REPRO_DEBUG=1 shows the traceback). Run as the
    program (no `argv`) after importing MLflow or pandas, it ends the process itself (`quickexit`)."""
    code = _main(argv)
    if argv is None and heavy():
        end_program(code)
    return code


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001
        if os.environ.get("REPRO_DEBUG"):
            raise
        from .reach import redact_text  # a URI's password and MLflow's auth variables never shown

        print(redact_text(f"repro {args.command}: error: {e}"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
