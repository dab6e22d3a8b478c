"""`repro-sweep`: a Hydra app whose multirun is planned, submitted one batch per target, and followed live.

    repro-sweep example=mnist_convnet,imbalanced_classification hardware=local seed=1,2 repeat=0,1,2
    repro-sweep +preset=demo --detach

Every invocation is a multirun (`-m` is implied); `--detach` / `--force` are shorthands for
`detach=true` / `force=true`. The launcher is `hydra/launcher=repro` (hydra_plugins/repro_launcher);
the config's schema is repro_mlflow/sweep/schema.py. Hydra's errors are shown on one line (report.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ..quickexit import end_program
from . import report, schema, submitter

CONF = Path(__file__).resolve().parents[2] / "conf"
PROG = "repro-sweep"
_FLAGS = {"--detach": "detach=true", "--force": "force=true", "--dry-run": "dry_run=true"}
# arguments after which nothing is submitted: no child process to submit from
_NO_SUBMISSION = {"dry_run=true", "--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion",
                  "-sc", "--version"}


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def _sweep(cfg: DictConfig) -> None:
    # Reached only with another launcher than `repro` (that one never calls the task function).
    raise SystemExit(f"{PROG}: error: repro-sweep runs with hydra/launcher=repro; remove the hydra/launcher override")


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
    """Entry point of `repro-sweep` (called without `argv`, as the program: it ends the process itself)."""
    if argv is not None:
        _main(argv)
        return
    code: int | str | None = 0
    try:
        _main(None)
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:  # Ctrl-C: what was submitted stays submitted (a new repro-sweep resumes it)
        print(f"{PROG}: interrupted", file=sys.stderr)
        code = 130
    end_program(code)


def _main(argv: list[str] | None) -> None:
    args = [_FLAGS.get(a, a) for a in (sys.argv[1:] if argv is None else argv)]
    # `params` (passed to every entry point that declares them) is open: params.X=v adds X. A target's
    # backend_config key is forced too: when `hardware` is swept, Hydra first composes the default
    # target, which lacks e.g. `bucket`; each target's own config still refuses a key it does not know.
    args = ["++" + a if a.startswith(("params.", "hardware.backend_config.")) else a for a in args]
    if not {"-m", "--multirun"} & set(args):
        args.insert(0, "--multirun")
    sys.argv = [sys.argv[0] if sys.argv else PROG, *args]
    if not _NO_SUBMISSION & set(args):
        submitter.start()  # imports MLflow's store on the other core while Hydra composes and plans
    try:
        _find_plugin()
        schema.register()
        with report.hydra_raises(PROG):
            _sweep()
    finally:
        submitter.stop()


if __name__ == "__main__":
    main()
