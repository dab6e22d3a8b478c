"""`repro` subcommands, one module each; every module has `register(subparsers)`."""

MODULES = ("fingerprint", "runs", "analyze", "rerun")
