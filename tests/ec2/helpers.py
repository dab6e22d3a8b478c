"""Submitting small batches to repro-ec2 in tests."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from repro_mlflow.submit.sync import SyncReport, sync_runs, unfinished_runs


def submit(aws, tracking: str, project: Path, n: int, entry: str = "hello", params=None, target: str = "ec2_c7i",
           **cfg) -> tuple[MlflowClient, str, list[str]]:
    """Submit `n` runs of `entry` as one batch; return the client, experiment id and run ids."""
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ec2")
    exp_id = exp.experiment_id if exp else client.create_experiment("ec2")
    scheduler = get_scheduler("ec2", aws.config(**cfg))
    params = params or (lambda i: {"x": str(i)})
    specs = [make_spec(project, entry, params(i)) for i in range(n)]
    run_ids = submit_batch(client, scheduler, specs, project, exp_id, tracking, target=target)
    return client, exp_id, run_ids


def sync(client: MlflowClient, exp_id: str) -> SyncReport:
    """What `repro sync` does, in-process."""
    return sync_runs(client, unfinished_runs(client, [exp_id]))
