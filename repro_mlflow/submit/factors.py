"""Before any run exists: refuse determinism factors that cannot be honoured where the run would go.

`determinism.refusal` says which combinations cannot be honoured; this module tells it whether a
scheduler's config gives the run a GPU and which ops an entry point declares (`ops: [max_pool]`
under the entry point in MLproject, an extension MLflow ignores).
"""

from __future__ import annotations

from pathlib import Path

from .. import determinism
from ..errors import ReproError


def local_gpu() -> bool:
    """Whether this machine has an NVIDIA GPU (the driver lists one)."""
    d = Path("/proc/driver/nvidia/gpus")
    return d.is_dir() and any(d.iterdir())


def gets_gpu(scheduler) -> bool:
    """Whether a run of this scheduler gets a GPU (the scheduler says: `SchedulerBase.gives_gpu`)."""
    return bool(scheduler.gives_gpu())


def check(entry_point: str, declaration: dict, params: dict[str, str], gpu: bool) -> None:
    """Raise ReproError (one line, the reason) when the run's factors cannot be honoured."""
    why = determinism.refusal(params, gpu=gpu, ops=declaration.get("ops") or [])
    if why:
        raise ReproError(f"{entry_point}: {why}")
