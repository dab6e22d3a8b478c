"""Schedulers behind one protocol (`protocol.Scheduler`), looked up by name without importing them all."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .protocol import SchedulerBase

# name -> (module, scheduler class, config dataclass)
SCHEDULERS: dict[str, tuple[str, str, str]] = {
    "local": ("repro_mlflow.schedulers.local", "LocalScheduler", "LocalConfig"),
    "slurm": ("repro_mlflow.schedulers.slurm", "SlurmScheduler", "SlurmConfig"),
    "htcondor": ("repro_mlflow.schedulers.htcondor", "HTCondorScheduler", "HTCondorConfig"),
    "ec2": ("repro_mlflow.schedulers.ec2", "EC2Scheduler", "EC2Config"),
}


def scheduler_class(name: str):
    """The scheduler class `name` (its capabilities: `shared_fs`, `config_fields()`), or None when it cannot be imported."""
    if name not in SCHEDULERS:
        return None
    mod, cls, _cfg = SCHEDULERS[name]
    try:
        return getattr(importlib.import_module(mod), cls)
    except ModuleNotFoundError:
        return None


def get_scheduler(name: str, config: dict[str, Any] | None = None) -> SchedulerBase:
    """Build the scheduler `name` from a backend-config dict (validated strictly)."""
    from ..errors import ReproError
    from .config import parse_config

    if name not in SCHEDULERS:
        raise ReproError(f"unknown backend '{name}' (known: {', '.join(sorted(SCHEDULERS))})")
    mod, cls, cfg = SCHEDULERS[name]
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        raise ReproError(f"backend '{name}' needs a package that is not installed: {e.name}") from None
    return getattr(module, cls)(parse_config(getattr(module, cfg), config or {}, name))
