"""`ReproLauncher`: receives every job of a Hydra multirun at once and hands them to the sweep planner.

Unlike Hydra's basic launcher it never calls the task function: a job *is* an MLflow project run,
described by the `repro` node of the job's config (see docs/sweep.md). Imports stay light here;
`repro_mlflow.sweep.launch` (mlflow, rich) is imported only when a sweep is launched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ReproLauncher(Launcher):
    def __init__(self, detach: bool = False, force: bool = False, dry_run: bool = False, poll_interval: float = 2.0,
                 node: str = "repro") -> None:
        self.detach, self.force, self.dry_run = bool(detach), bool(force), bool(dry_run)
        self.poll_interval, self.node = float(poll_interval), node
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from repro_mlflow.sweep.launch import launch_sweep

        return launch_sweep(self, job_overrides, initial_job_idx)

    def options(self) -> dict[str, Any]:
        return {"detach": self.detach, "force": self.force, "dry_run": self.dry_run,
                "poll_interval": self.poll_interval, "node": self.node}
