"""The `repro` launcher's and sweeper's configs, registered as `hydra/launcher: repro` and `hydra/sweeper: repro`,
and the run description's schema `repro_run` (repro_mlflow/sweep/schema.py); cheap to import.

No `from __future__ import annotations` here: Hydra executes plugin modules outside sys.modules,
where dataclasses cannot resolve string annotations.
"""

# ruff: noqa: UP006, UP035, UP045 - typing's Optional/Dict/List: OmegaConf reads these annotations (omegaconf 2.2 knows no `X | None`)


from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore

from repro_mlflow.sweep.schema import register


@dataclass
class ReproLauncherConf:
    """`hydra.launcher.*` of the repro launcher."""

    _target_: str = "hydra_plugins.repro_launcher.launcher.ReproLauncher"
    detach: bool = False  # return right after submission instead of showing live progress
    force: bool = False  # re-run every run, even those that already FINISHED
    dry_run: bool = False  # plan and print the runs per target; create and submit nothing
    poll_interval: float = 2.0  # seconds between status reconciliations while waiting
    node: str = "repro"  # the key of each job's config that describes its MLflow run


@dataclass
class ReproSweeperConf:
    """`hydra.sweeper.*` of the repro sweeper (Hydra's basic sweeper's keys)."""

    _target_: str = "hydra_plugins.repro_launcher.sweeper.ReproSweeper"
    max_batch_size: Optional[int] = None  # None: the launcher gets the whole sweep at once
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="repro", node=ReproSweeperConf, provider="repro_launcher")
ConfigStore.instance().store(group="hydra/launcher", name="repro", node=ReproLauncherConf, provider="repro_launcher")
register()  # repro_sweep, repro_run
