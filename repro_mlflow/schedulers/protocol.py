"""The backend protocol: what every scheduler (local, Slurm, HTCondor, EC2) implements.

A `Scheduler` takes a whole `Batch` in one call, polls all its jobs in one call, cancels, and
fetches a job's outputs (its offline store) back to the submit side. Everything MLflow-side
(creating runs, tags, terminal statuses, replay) is shared in `mlflow_side`, `batch` and `sync`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol
from collections.abc import Sequence

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

    def preflight(self) -> object:
        """Checks that need the scheduler (an interpreter, a partition, a command on PATH), made before any
        run or batch directory exists; a ReproError says what is wrong. By default nothing."""
        return None

    def reconcile(self, job_ids: Sequence[str], states: dict[str, JobState]) -> None:
        """Act on what `poll` read (release a held job, stop an idle machine); by default nothing."""
