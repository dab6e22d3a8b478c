"""`repro-sweep`: a Hydra app whose multirun is planned, submitted one batch per target, and followed live.

    repro-sweep example=mnist_convnet,imbalanced_classification hardware=local seed=1,2 repeat=0,1,2
    repro-sweep +preset=demo --detach

Every invocation is a multirun (`-m` is implied); `--detach` / `--force` are shorthands for
`detach=true` / `force=true`. The launcher is `hydra/launcher=repro` (hydra_plugins/repro_launcher).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import hydra
from omegaconf import DictConfig

from ..errors import ReproError
from . import validate

CONF = Path(__file__).resolve().parents[2] / "conf"
_FLAGS = {"--detach": "detach=true", "--force": "force=true", "--dry-run": "dry_run=true"}


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def _sweep(cfg: DictConfig) -> None:
    # Reached only with another launcher than `repro` (that one never calls the task function).
    raise SystemExit("repro-sweep: error: repro-sweep runs with hydra/launcher=repro; remove the hydra/launcher override")


def one_line(ex: BaseException) -> str:
    """Hydra's multi-line complaint as one line: its sentences up to the first blank line, no key dumps."""
    lines = []
    for ln in str(ex).strip().splitlines():
        if not ln.strip():
            break
        if not ln.strip().startswith(("full_key:", "object_type=", "reference_type=")):
            lines.append(ln.strip())
    return " ".join(lines) or type(ex).__name__


def _run_and_report(func: Callable[[], Any]) -> Any:
    """Replaces Hydra's reporter for this app: every error is one line (HYDRA_FULL_ERROR=1 shows the trace)."""
    try:
        return func()
    except Exception as ex:  # noqa: BLE001
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"repro-sweep: error: {one_line(ex)}", file=sys.stderr)
        raise SystemExit(1) from None


def _find_plugin() -> None:
    """Make `hydra_plugins.repro_launcher` (beside conf/) discoverable even when the install predates it."""
    import importlib.util

    try:
        found = importlib.util.find_spec("hydra_plugins.repro_launcher") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        sys.path.insert(0, str(CONF.parent))


def main(argv: list[str] | None = None) -> None:
    """Entry point of `repro-sweep`."""
    args = [_FLAGS.get(a, a) for a in (sys.argv[1:] if argv is None else argv)]
    # `params` (passed to every entry point that declares them) is open: params.X=v adds X. A target's
    # backend_config key is forced too: when `hardware` is swept, Hydra first composes the default
    # target, which lacks e.g. `bucket`; each target's own config still refuses a key it does not know.
    args = ["++" + a if a.startswith(("params.", "hardware.backend_config.")) else a for a in args]
    try:
        validate.check(args, CONF)
    except ReproError as e:
        print(f"repro-sweep: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if not {"-m", "--multirun"} & set(args):
        args.insert(0, "--multirun")
    sys.argv = [sys.argv[0] if sys.argv else "repro-sweep", *args]
    _find_plugin()
    import hydra._internal.utils as hydra_utils

    hydra_utils.run_and_report = _run_and_report  # one-line errors, as everywhere in repro
    _sweep()


if __name__ == "__main__":
    main()
