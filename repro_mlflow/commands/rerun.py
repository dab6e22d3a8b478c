"""`repro rerun RUN_ID`: re-create a past run (same project, entry point, params, config hash) N times and follow them."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _source(run) -> tuple[Path, str]:
    """The run's project directory and entry point, or a one-line ReproError saying what is missing."""
    from mlflow.utils.mlflow_tags import MLFLOW_PROJECT_ENTRY_POINT, MLFLOW_SOURCE_NAME

    from ..errors import ReproError
    from ..submit.project import load_entry_points

    rid = run.info.run_id
    src = run.data.tags.get(MLFLOW_SOURCE_NAME, "")
    entry = run.data.tags.get(MLFLOW_PROJECT_ENTRY_POINT, "")
    if not src or not (Path(src) / "MLproject").is_file():
        raise ReproError(f"cannot rerun {rid}: no recoverable project source (no MLproject at '{src or '(none recorded)'}')")
    if not entry or entry not in load_entry_points(Path(src)):
        raise ReproError(f"cannot rerun {rid}: unknown entry point '{entry or '(none recorded)'}' in {src}")
    return Path(src), entry


def _cmd_rerun(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from .. import tags as T
    from ..errors import ReproError
    from ..schedulers.protocol import FINISHED, TERMINAL
    from ..submit.batch import submit_batch
    from ..submit.project import make_spec
    from ..submit.rebuild import scheduler_of
    from ..submit.sync import sync_runs

    if args.repeat < 1:
        raise ReproError("--repeat must be at least 1")
    client = MlflowClient(args.tracking_uri) if args.tracking_uri else MlflowClient()
    run = client.get_run(args.run_id)
    project_dir, entry = _source(run)
    tags = run.data.tags
    if not tags.get(T.RECORD):
        raise ReproError(f"cannot rerun {args.run_id}: it has no batch record (not launched by a repro backend)")
    scheduler = scheduler_of(run)  # the run's own backend and its validated config, from its batch record
    params = dict(run.data.params)
    keep = {k: v for k, v in tags.items() if k.startswith(T.DET_PREFIX) or k in (T.CONFIG_HASH, T.SOFTWARE)}
    specs = []
    for i in range(args.repeat):
        spec = make_spec(project_dir, entry, params, {**keep, T.RERUN_OF: args.run_id, T.REPEAT: str(i)})
        specs.append(spec)
    target = tags.get(T.TARGET) or scheduler.name
    uri = client.tracking_uri if hasattr(client, "tracking_uri") else args.tracking_uri
    ids = submit_batch(client, scheduler, specs, project_dir, run.info.experiment_id, uri, target=target)
    print(f"submitted {len(ids)} rerun(s) of {args.run_id} to {target} as one batch")
    if args.detach:
        for rid in ids:
            print(rid)
        return 0
    while True:
        runs = [client.get_run(r) for r in ids]
        if all(r.info.status in TERMINAL for r in runs):
            break
        sync_runs(client, [r for r in runs if r.info.status not in TERMINAL], replay=True, quiet=True)
        time.sleep(1.0)
    for r in runs:
        print(f"{r.info.run_id} {r.info.status}")
    return 0 if all(r.info.status == FINISHED for r in runs) else 1


def register(sub) -> None:
    a = sub.add_parser("rerun", help="re-run a past run N times on its own backend: is it repeatable?",
                       description="Re-create a run made by a repro backend (same project, entry point, parameters, "
                                   "repro.det.* and config hash), tagged repro.rerun_of=RUN_ID, and follow the reruns.")
    a.add_argument("run_id", metavar="RUN_ID")
    a.add_argument("--repeat", type=int, default=1, help="reruns to make (default 1)")
    a.add_argument("--detach", action="store_true", help="submit and return; follow with `repro status`")
    a.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or MLflow's default)")
    a.set_defaults(func=_cmd_rerun)
