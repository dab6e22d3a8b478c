"""The batch API: N runs become N MLflow runs, one scheduler submission and one batch record."""

from __future__ import annotations

import os
import time
from pathlib import Path
from collections.abc import Sequence

from mlflow.tracking import MlflowClient

from .. import tags as T
from ..errors import ReproError
from ..runtime import record as R
from . import mlflow_side
from . import provenance
from ..schedulers.protocol import Batch, RunSpec, Scheduler, SchedulerBase, batch_record


def _write_record(scheduler: Scheduler, batch: Batch, job_ids: Sequence[str] | None = None) -> Path:
    if isinstance(scheduler, SchedulerBase):
        return scheduler.write_record(batch, job_ids)
    return R.write(batch.record, batch_record(scheduler, batch, job_ids))


def repro_home() -> Path:
    """Where repro keeps submit-side state: job directories, staging, returned outputs."""
    return Path(os.environ.get("REPRO_HOME", ".repro")).resolve()


def absolute_tracking_uri(uri: str) -> str:
    """Make a relative sqlite/file tracking URI absolute, so a job in another directory finds the same store."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    if "://" not in uri and not uri.startswith("databricks"):
        return Path(uri).resolve().as_uri()
    return uri


def job_credentials(scheduler: Scheduler, tracking_uri: str) -> tuple[str, dict[str, str]]:
    """(the tracking URI without `user:password@`, the credentials its jobs get through their environment):
    MLflow's auth variables of this environment, then of the backend config's `env`, then the URI's. A
    scheduler that cannot pass them but through a file refuses credentials in the URI or the config (one line)."""
    from ..reach import AUTH_VARS, job_secrets, split_credentials

    clean_uri, uri_credentials = split_credentials(tracking_uri)
    config_env = getattr(getattr(scheduler, "config", None), "env", None) or {}
    in_config = sorted(k for k in config_env if k in AUTH_VARS)
    if not getattr(scheduler, "passes_secrets", False):
        if in_config:
            raise ReproError(f"repro-{scheduler.name} cannot pass {', '.join(in_config)} of the backend config's env to "
                             "its jobs without writing it into the job's files: leave it out (the results come back "
                             "with `repro sync`, which uses your credentials)")
        if uri_credentials:
            raise ReproError(f"repro-{scheduler.name} cannot pass the credentials of the tracking URI {clean_uri} to "
                             "its jobs without writing them into the job's files: use a URI without user:password@ "
                             "(the jobs' results come back with `repro sync`, which uses your credentials)")
        return clean_uri, {}
    return clean_uri, {**job_secrets(""), **{k: str(config_env[k]) for k in in_config}, **uri_credentials}


def submit_batch(
    client: MlflowClient,
    scheduler: Scheduler,
    specs: Sequence[RunSpec],
    project_dir: Path,
    experiment_id: str,
    tracking_uri: str,
    target: str | None = None,
    source: str | None = None,
) -> list[str]:
    """Create the runs, submit them in one scheduler call, write the batch record, tag each run with
    its job and the record; return the run ids.

    If the scheduler refuses the batch, the runs just created are deleted and the error is raised:
    a refused batch leaves nothing behind.
    """
    if not specs:
        raise ReproError("nothing to submit: the batch is empty")
    clean_uri, secrets = job_credentials(scheduler, tracking_uri)  # refused before anything exists
    if isinstance(scheduler, SchedulerBase):
        scheduler.check_batch_size(len(specs))  # a batch the scheduler cannot take: refused before any run exists
    files = provenance.file_digests(Path(project_dir))  # what a later `repro rerun` checks the project against
    project = provenance.project_tags(Path(project_dir), files)
    for spec in specs:
        for k, v in project.items():
            spec.tags.setdefault(k, v)
        spec.tags.setdefault(T.BACKEND, scheduler.name)
        spec.tags.setdefault(T.TARGET, target or scheduler.name)
        spec.tags.setdefault(T.ATTEMPT, "1")
    run_ids = mlflow_side.create_runs(client, experiment_id, specs, source or str(Path(project_dir).resolve()))
    workdir = repro_home() / "batches" / f"{scheduler.name}-{time.strftime('%Y%m%d-%H%M%S')}-{run_ids[0][:8]}"
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the batch's files are its owner's alone
    provenance.write_listing(workdir, files)
    batch = Batch(list(specs), Path(project_dir).resolve(), absolute_tracking_uri(clean_uri), experiment_id, workdir,
                  secrets=secrets)
    try:
        job_ids = scheduler.submit(batch)  # writes the record (without job ids) before any job can start
    except BaseException:
        mlflow_side.delete_runs(client, run_ids)
        batch.record.unlink(missing_ok=True)
        raise
    path = _write_record(scheduler, batch, job_ids)
    mlflow_side.set_tags_bulk(client, {
        rid: {T.JOB_ID: jid, T.ARRAY_INDEX: str(i), T.WORKDIR: str(workdir), T.RECORD: str(path)}
        for i, (rid, jid) in enumerate(zip(run_ids, job_ids))
    }, new=True)
    return run_ids
