"""`repro-sweep`: a Hydra app whose multirun is planned, submitted one batch per target, and followed live.

    repro-sweep example=mnist_convnet,imbalanced_classification hardware=local seed=1,2 repeat=0,1,2
    repro-sweep +preset=demo --detach

Every invocation is a multirun (`-m` is implied); `--detach` / `--force` are shorthands for
`detach=true` / `force=true`. The launcher is `hydra/launcher=repro` (hydra_plugins/repro_launcher).
"""

from __future__ import annotations

import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> None:
    """Entry point of `repro-sweep`."""
    args = [_FLAGS.get(a, a) for a in (sys.argv[1:] if argv is None else argv)]
    # `params` (passed to every entry point that declares them) is open: params.X=v adds X
    args = ["++" + a if a.startswith("params.") else a for a in args]
    try:
        validate.check(args, CONF)
    except ReproError as e:
        print(f"repro-sweep: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if not {"-m", "--multirun"} & set(args):
        args.insert(0, "--multirun")
    sys.argv = [sys.argv[0] if sys.argv else "repro-sweep", *args]
    _sweep()


if __name__ == "__main__":
    main()
