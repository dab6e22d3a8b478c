"""The `repro` launcher's config, registered as `hydra/launcher: repro` (cheap to import).

No `from __future__ import annotations` here: Hydra executes plugin modules outside sys.modules,
where dataclasses cannot resolve string annotations.
"""


from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class ReproLauncherConf:
    """`hydra.launcher.*` of the repro launcher."""

    _target_: str = "hydra_plugins.repro_launcher.launcher.ReproLauncher"
    detach: bool = False  # return right after submission instead of showing live progress
    force: bool = False  # re-run every run, even those that already FINISHED
    poll_interval: float = 2.0  # seconds between status reconciliations while waiting
    node: str = "repro"  # the key of each job's config that describes its MLflow run


ConfigStore.instance().store(group="hydra/launcher", name="repro", node=ReproLauncherConf, provider="repro_launcher")
