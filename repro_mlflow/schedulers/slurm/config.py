"""Settings of `--backend repro-slurm`, checked when they are parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_MEM_RE = re.compile(r"^\d+[KMGT]?$", re.I)


def check_time(value: str) -> str:
    """Validate a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED."""
    if value.upper() in ("UNLIMITED", "INFINITE"):
        return value
    m = _TIME_RE.match(value.strip())
    ok = bool(m)
    if m:
        days, a, b, c = m.groups()
        parts = [int(x) for x in (a, b, c) if x is not None]
        if days is None:
            ok = all(p < 60 for p in parts[1:])  # M, M:S, H:M:S
        else:
            ok = parts[0] < 24 and all(p < 60 for p in parts[1:])
    if not ok:
        raise ValueError(f"time '{value}' is not a Slurm time limit (minutes, [D-]HH:MM:SS, D-HH, D-HH:MM)")
    return value


@dataclass
class SlurmConfig:
    """Settings of `--backend repro-slurm` (all optional)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None  # minutes or [D-]HH:MM:SS
    cpus_per_task: int | None = None
    mem: str | None = None  # per node, e.g. 4G
    gpus: int | str | None = None  # --gpus, e.g. 1 or "a100:1"
    gres: str | None = None  # --gres, e.g. gpu:1 (instead of gpus)
    constraint: str | None = None
    extra_args: list | None = None  # more sbatch arguments, e.g. ["--exclusive"]
    setup: list | None = None  # shell lines run before the runtime, e.g. ["module load cuda/12"]
    env: dict | None = None  # variables set in the job
    env_passthrough: list | None = None  # names passed from the submitting environment (sbatch --export)
    jobs_dir: str | None = None  # where job directories live (shared with the nodes); default under REPRO_HOME
    python: str | None = None  # interpreter on the nodes; default: this one
    pythonpath: str | None = None  # PYTHONPATH of the job; default: repro-mlflow's root + $PYTHONPATH
    requeue: bool = False  # requeue jobs that are preempted or whose node fails (else they end FAILED)
    max_running: int | None = None  # array throttle: at most this many runs of a batch at once (--array=...%N)
    job_name: str = "repro"

    def __post_init__(self) -> None:
        if self.time is not None:
            check_time(str(self.time))
        if self.mem is not None and not _MEM_RE.match(str(self.mem)):
            raise ValueError(f"mem '{self.mem}' is not a Slurm memory size (e.g. 4096, 4G, 500M)")
        if self.gpus is not None and self.gres is not None:
            raise ValueError("give gpus or gres, not both")
        for name in ("cpus_per_task", "max_running"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("extra_args", "setup", "env_passthrough"):
            v = getattr(self, name)
            if v is not None and not all(isinstance(x, str) for x in v):
                raise ValueError(f"{name} must be a list of strings")

    def sbatch_options(self) -> list[str]:
        """The sbatch options these settings ask for."""
        opts = []
        for key, flag in (("partition", "--partition"), ("account", "--account"), ("qos", "--qos"),
                          ("time", "--time"), ("cpus_per_task", "--cpus-per-task"), ("mem", "--mem"),
                          ("gpus", "--gpus"), ("gres", "--gres"), ("constraint", "--constraint")):
            value = getattr(self, key)
            if value is not None:
                opts.append(f"{flag}={value}")
        opts.append("--requeue" if self.requeue else "--no-requeue")
        return opts + list(self.extra_args or [])
