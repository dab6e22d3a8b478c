"""MLflow project backends (`mlflow run --backend repro-*`) over the batch API.

`run()` returns at once, as MLflow asks of a backend; the `mlflow run` CLI does not wait on plugin
backends, so the job outlives it and ends its run itself (FINISHED, FAILED or KILLED). The CLI
prints the run id, the log file and the commands to follow it (`repro status`, `repro logs -f`).
From Python, `mlflow.projects.run(..., backend="repro-local", synchronous=True)` waits.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mlflow.projects import ExecutionException
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.utils import PROJECT_ENV_MANAGER
from mlflow.projects.submitted_run import SubmittedRun
from mlflow.tracking import MlflowClient

from .. import tags as T
from ..errors import ReproError
from ..reach import check_tracking_server
from ..envs import project_env
from ..schedulers import get_scheduler
from ..schedulers.config import load_backend_config
from ..schedulers.protocol import TERMINAL
from ..submit import mlflow_side
from ..submit.batch import submit_batch
from ..submit.factors import check as check_factors
from ..submit.factors import gets_gpu
from ..envs.software import Software
from ..submit.project import hash_config, load_entry_points, make_spec
from ..submit.runtime_env import check_runtime_env


PROJECT_ENV_KEY = "project_env"  # backend-config key: local | virtualenv | conda (as --env-manager)
# backend-config key: pass -P parameters the entry point does not declare on to its command (as MLflow does)
ALLOW_EXTRA_KEY = "allow_extra_params"


class ReproSubmittedRun(SubmittedRun):
    """A run submitted through a repro scheduler; status comes from the tracking store.

    `wait()` and `cancel()` rebuild the scheduler from the run's batch record (`submit/rebuild.py`),
    so a `ReproSubmittedRun(run_id)` made later, in another process, acts as the submitting one.
    """

    def __init__(self, run_id: str, scheduler=None, job_id: str | None = None, client: MlflowClient | None = None):
        super().__init__()
        self._run_id, self.job_id = run_id, job_id
        self.client = client or MlflowClient()
        self._given = scheduler  # what `run()` submitted with; the record's is used to act

    @property
    def scheduler(self):
        """The run's scheduler, rebuilt from its batch record."""
        from ..submit.rebuild import scheduler_of

        return scheduler_of(self.client.get_run(self._run_id))

    @property
    def run_id(self) -> str:
        return self._run_id

    def get_status(self) -> str:
        return self.client.get_run(self._run_id).info.status

    def wait(self, poll_s: float = 1.0) -> bool:
        """Block until the run is terminal (reconciling with the scheduler); True if FINISHED."""
        from ..submit.outage import ServerWatch, tracking_uri
        from ..submit.sync import sync_runs

        from ..submit.rebuild import Rebuilder

        watch = ServerWatch(tracking_uri(self.client))  # a server away for a while: said, and waited out
        rebuilder = Rebuilder()  # the scheduler from the batch record, read once
        while True:
            ok, status = watch.call(self.get_status)
            if ok and status in TERMINAL:
                return status == "FINISHED"
            if ok:
                watch.call(lambda: sync_runs(self.client, [self.client.get_run(self._run_id)], replay=True, quiet=True,
                                             rebuilder=rebuilder))
            time.sleep(poll_s)

    def cancel(self) -> None:
        run = self.client.get_run(self._run_id)
        from ..submit.rebuild import scheduler_of

        scheduler_of(run).cancel([self.job_id or run.data.tags.get(T.JOB_ID, "")])
        if self.get_status() not in TERMINAL:
            mlflow_side.end_run(self.client, self._run_id, "KILLED", "cancelled")


class ReproBackend(AbstractBackend):
    """One `mlflow run` = a batch of one run on the scheduler `scheduler_name`."""

    scheduler_name = "local"

    def run(self, project_uri, entry_point, params, version, backend_config, tracking_uri, experiment_id):
        try:
            return self._run(project_uri, entry_point, params, backend_config, tracking_uri, experiment_id)
        except ReproError as e:  # MLflow's CLI prints its own error type on one line
            raise ExecutionException(str(e)) from None

    def _run(self, project_uri, entry_point, params, backend_config, tracking_uri, experiment_id):
        check_tracking_server(tracking_uri)  # before a venv is built or anything exists
        project_dir = Path(project_uri)
        if not project_dir.is_dir():
            raise ReproError(f"repro-{self.scheduler_name} runs local project directories; got {project_uri}")
        user_cfg, mlflow_cfg = load_backend_config(backend_config)
        # `mlflow run --env-manager M` reaches us in MLflow's own key; `project_env` is the backend-config equivalent
        manager = mlflow_cfg.get(PROJECT_ENV_MANAGER) or user_cfg.pop(PROJECT_ENV_KEY, None)
        user_cfg.pop(PROJECT_ENV_KEY, None)
        allow_extra = user_cfg.pop(ALLOW_EXTRA_KEY, False)
        if not isinstance(allow_extra, bool):
            raise ReproError(f"backend-config key '{ALLOW_EXTRA_KEY}' must be true or false, got {allow_extra!r}")
        scheduler = get_scheduler(self.scheduler_name, user_cfg)
        check_runtime_env(os.environ, getattr(scheduler.config, "env", None))
        spec = make_spec(project_dir, entry_point, params or {}, allow_extra=allow_extra)
        check_factors(entry_point, load_entry_points(project_dir)[entry_point], spec.params, gets_gpu(scheduler))
        scheduler.preflight()  # checks that need the scheduler (a partition, a command on PATH), before any run exists
        env = project_env.resolve(project_dir, manager, self.scheduler_name, shared_fs=scheduler.shared_fs, log=lambda m: print(f"repro: {m}", file=sys.stderr))
        spec.env.update(env.run_env())
        spec.tags.update(env.tags())
        # the same hash a sweep gives this config in the current software (a built project env by its content)
        software = {"project_env": Path(env.prefix).name} if env.prefix else Software().identity()
        spec.tags.setdefault(T.CONFIG_HASH, hash_config(entry_point, spec.params, software))
        client = MlflowClient(tracking_uri)
        [run_id] = submit_batch(client, scheduler, [spec], project_dir, str(experiment_id), tracking_uri)
        run_tags = client.get_run(run_id).data.tags
        job_id = run_tags.get(T.JOB_ID, "")
        shown = scheduler.show_job_id(job_id)
        log = scheduler.log_path(job_id, Path(run_tags.get(T.WORKDIR, ".")))
        print(f"repro: run {run_id} submitted to {self.scheduler_name} (job {shown})", file=sys.stderr)
        if log:
            print(f"repro: output: {log}   follow: repro logs -f {run_id}", file=sys.stderr)
        print("repro: status: repro status   browse: mlflow ui", file=sys.stderr)
        return ReproSubmittedRun(run_id, scheduler, job_id, client)


def _backend(name: str) -> AbstractBackend:
    b = ReproBackend()
    b.scheduler_name = name
    return b


def local_backend() -> AbstractBackend:
    """Entry point of `repro-local`."""
    return _backend("local")


def slurm_backend() -> AbstractBackend:
    """Entry point of `repro-slurm`."""
    return _backend("slurm")


def htcondor_backend() -> AbstractBackend:
    """Entry point of `repro-htcondor`."""
    return _backend("htcondor")


def ec2_backend() -> AbstractBackend:
    """Entry point of `repro-ec2`."""
    return _backend("ec2")
