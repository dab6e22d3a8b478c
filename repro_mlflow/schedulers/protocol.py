"""The backend protocol: what every scheduler (local, Slurm, HTCondor, EC2) implements.

A `Scheduler` takes a whole `Batch` in one call, polls all its jobs in one call, cancels, and
fetches a job's outputs (its offline store) back to the submit side. Everything MLflow-side
(creating runs, tags, terminal statuses, replay) is shared in `mlflow_side`, `batch` and `sync`.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol
from collections.abc import Sequence

from .. import tags as T
from ..runtime import record as R

# Run states, as MLflow names them.
SCHEDULED, RUNNING, FINISHED, FAILED, KILLED = "SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED"
TERMINAL = frozenset({FINISHED, FAILED, KILLED})


@dataclass
class RunSpec:
    """One run to execute: an entry point of a project with its parameters."""

    entry_point: str
    params: dict[str, str]
    command: str  # the entry point's shell command, parameters substituted
    tags: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None  # set once the MLflow run exists


@dataclass
class Batch:
    """Runs submitted together to one target: one sbatch array, one HTCondor cluster, one EC2 launch."""

    runs: list[RunSpec]
    project_dir: Path
    tracking_uri: str
    experiment_id: str
    workdir: Path  # submit-side directory of this batch: staging, logs, returned outputs
    # where the batch's files are, for its record (runtime/record.py): a scheduler's `submit` sets
    # what differs from the defaults ("job_dirs", "project" as the jobs see it, "python")
    layout: dict[str, str] = field(default_factory=dict)
    # the record's `worker` section: what the one worker entry needs where the job runs ("cwd",
    # "run_dir" with "{index}", "env", "extra_tags", "requeue", "offline"); defaults from `layout`
    worker: dict[str, Any] = field(default_factory=dict)
    record_path: Path | None = None  # where the batch record is written; default <workdir>/batch.json
    # credentials the jobs need (MLflow's auth variables, those of a `user:password@` tracking URI): passed
    # through the scheduler's environment at submit, never written in the record or any file
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    # the submissions a scheduler split the batch into (the record's `parts`): [{"id", "first", "count",
    # "after"}], one per sbatch array or HTCondor cluster; empty when the batch went in one submission
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def record(self) -> Path:
        """The batch record's path (what `python -m repro_mlflow.runtime <record> <index>` reads)."""
        return self.record_path or self.workdir / R.RECORD_FILE


@dataclass
class JobState:
    """What a scheduler says about one job."""

    state: str  # SCHEDULED | RUNNING | FINISHED | FAILED | KILLED, or None when the job is unknown
    reason: str | None = None
    attempt: int | None = None


class Scheduler(Protocol):
    """One per scheduler kind; constructed from its validated config."""

    name: ClassVar[str]

    def submit(self, batch: Batch) -> list[str]:
        """Submit every run of the batch in one scheduler call; one job id per run, in order."""

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """States of all these jobs in one scheduler query; a job the scheduler no longer knows maps to JobState(None)."""

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Stop these jobs."""

    def fetch(self, job_id: str, run_id: str, workdir: Path) -> Path | None:
        """Bring the job's outputs to the submit side; return its offline bundle directory, if any."""


class SchedulerBase:
    """What callers ask of a scheduler beyond the protocol, with defaults; a scheduler overrides what differs."""

    name: ClassVar[str]
    config_class: ClassVar[type | None] = None  # its config dataclass (which fields it takes)
    shared_fs: ClassVar[bool] = False  # whether its jobs see the submitting machine's files (an env cache there)
    runs_here: ClassVar[bool] = False  # whether its jobs run on the submitting machine (its GPU is theirs)
    # whether `submit` hands `Batch.secrets` to the jobs through their environment (never a file); a scheduler
    # that cannot refuses a tracking URI with credentials before anything exists
    passes_secrets: ClassVar[bool] = False
    config: object = None

    @classmethod
    def config_fields(cls) -> frozenset[str]:
        """Names of the config fields this scheduler takes (e.g. "python", "container", "image")."""
        import dataclasses

        c = cls.config_class
        return frozenset(f.name for f in dataclasses.fields(c)) if c and dataclasses.is_dataclass(c) else frozenset()

    def gives_gpu(self) -> bool:
        """Whether a run gets a GPU: by default, whether the config asks for one."""
        cfg = self.config
        if getattr(cfg, "gpus", None) or "gpu" in str(getattr(cfg, "gres", "") or "") or getattr(cfg, "request_gpus", 0):
            return True
        itype = str(getattr(cfg, "instance_type", "") or "")
        return itype[:1] in ("g", "p") and "." in itype

    def show_job_id(self, job_id: str) -> str:
        """The job id as a user knows it from the scheduler's own tools."""
        return job_id

    def log_path(self, job_id: str, workdir: Path) -> Path | None:
        """Where the job's output is readable on the submit side, if anywhere."""
        return None

    def reconcile(self, job_ids: Sequence[str], states: dict[str, JobState]) -> None:
        """Act on what `poll` read (release a held job, stop an idle machine); by default nothing."""

    def preflight(self) -> object:
        """Check what can be checked before any run or batch directory exists (an interpreter, a partition, client
        commands, credentials); a ReproError says what is wrong. By default nothing."""
        return None

    def results_path(self, job_id: str, workdir: Path) -> Path | str | None:
        """Where the job's local store is once the job has ended (a path on the submit side, or where the job
        uploads it, e.g. an S3 URI), if the scheduler knows; `repro sync` ends a run whose `fetch` finds no
        store there FAILED ("local results lost: <this> missing"), never FINISHED."""
        return None

    def check_batch_size(self, n: int) -> None:
        """Refuse (a ReproError, one line) a batch of `n` runs the scheduler cannot take, before any run of it
        exists; a batch larger than one submission takes is split by `submit` instead. By default nothing."""
        return None

    def exit_state(self, job_id: str, workdir: Path) -> JobState | None:
        """What a job the scheduler no longer knows left behind (an exit file), if anything; by default nothing."""
        return None

    def describe(self, job_ids: Sequence[str]) -> list[dict[str, str]]:
        """Rows about the machines behind these jobs, for `repro status` (EC2's instances); by default none."""
        return []

    def write_record(self, batch: Batch, job_ids: Sequence[str] | None = None) -> Path:
        """Write the batch record (`batch.record`); a scheduler calls it in `submit` before any job can start,
        once its layout is known, and `submit_batch` again with the job ids."""
        return R.write(batch.record, batch_record(self, batch, job_ids))


def batch_record(scheduler: Any, batch: Batch, job_ids: Sequence[str] | None = None) -> R.BatchRecord:
    """The record of a batch: the scheduler's full validated config, the runs, the layout, the worker's part."""
    config = getattr(scheduler, "config", None)
    layout = {"workdir": str(batch.workdir), "job_dirs": str(batch.workdir), "project": str(batch.project_dir),
              "source": str(batch.project_dir), "python": str(getattr(config, "python", None) or sys.executable),
              **{k: str(v) for k, v in batch.layout.items()}}
    worker = {"cwd": layout["project"], "run_dir": str(Path(layout["job_dirs"]) / "{index}"), "env": {},
              "extra_tags": {}, "requeue": False, "offline": False, **batch.worker}
    ids = list(job_ids) if job_ids is not None else [""] * len(batch.runs)
    runs = [R.RecordRun(index=i, run_id=str(spec.run_id), job_id=str(jid), entry_point=spec.entry_point,
                        params={k: str(v) for k, v in spec.params.items()},
                        attempt=int(spec.tags.get(T.ATTEMPT, "1") or 1), command=spec.command, env=dict(spec.env))
            for i, (spec, jid) in enumerate(zip(batch.runs, ids))]
    return R.BatchRecord(scheduler=scheduler.name,
                         config=dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {},  # type: ignore[arg-type]
                         tracking_uri=batch.tracking_uri, experiment_id=str(batch.experiment_id), layout=layout,
                         worker=worker, runs=runs, parts=[dict(p) for p in batch.parts])
