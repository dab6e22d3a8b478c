"""The sweep config's schema: structured configs (dataclasses) in Hydra's ConfigStore.

Hydra merges every YAML file of conf/ into these, so an unknown key or a value of the wrong type
fails while Hydra composes, in Hydra's words (`repro-sweep threads=abc`: "Value 'abc' of type 'str'
could not be converted to Integer"). Registered names:

- `repro_sweep`: repro-sweep's primary config (conf/config.yaml lists it first in its defaults);
  its `example`, `hardware` and `software` nodes are `ExampleConf`, `TargetConf`, `SoftwareConf`.
- `repro_run` (package `repro`): the run description the repro launcher reads from each job; any
  Hydra app using `hydra/launcher=repro` can put it in its defaults list to have its `repro` node checked.

No `from __future__ import annotations`: OmegaConf reads these annotations as types. Cheap to import
(Hydra and OmegaConf only): the launcher plugin registers these at plugin discovery.
"""

# ruff: noqa: UP006, UP035, UP045 - typing's Optional/Dict/List: OmegaConf reads these annotations (omegaconf 2.2 knows no `X | None`)

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ExampleConf:
    """An `example/` entry: which entry point runs, with which of its parameters set."""

    entry_point: str = MISSING
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetConf:
    """A `hardware/` entry (a target); `backend_config` is checked by the target's scheduler config."""

    name: str = MISSING
    backend: str = MISSING
    gpu: Optional[str] = None
    cpu_arch: Optional[str] = None
    container: Optional[str] = None
    backend_config: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SoftwareConf:
    """A `software/` entry: pip pins for a cached virtualenv, or a container image; neither is `current`."""

    name: str = MISSING
    pins: List[str] = field(default_factory=list)
    image: Optional[str] = None


@dataclass
class RunConf:
    """The `repro` node of a job: the MLflow run the repro launcher plans (docs/sweep.md)."""

    entry_point: str = MISSING
    params: Dict[str, Any] = field(default_factory=dict)  # the entry point's own parameters
    common_params: Dict[str, Any] = field(default_factory=dict)  # passed where the entry point declares them
    factors: Dict[str, Any] = field(default_factory=dict)  # likewise; a note names those not passed
    repeat: int = 0
    # A TargetConf / SoftwareConf mapping, or an interpolation of one (`${hardware}`: OmegaConf cannot merge
    # an interpolation into a typed node); repro-sweep's are typed where they are defined, `hardware`/`software`.
    target: Any = None  # None: this machine (repro-local)
    software: Any = None  # None: `current`
    project_dir: Optional[str] = None
    experiment: Optional[str] = None  # None: MLflow's Default
    tracking_uri: Optional[str] = None
    sweep: Optional[str] = None


@dataclass
class SweepConf:
    """repro-sweep's primary config: groups, factors, sweep-level settings and the `repro` node built from them."""

    example: ExampleConf = field(default_factory=ExampleConf)
    hardware: TargetConf = field(default_factory=TargetConf)
    software: SoftwareConf = field(default_factory=SoftwareConf)
    tracking_uri: Optional[str] = None
    experiment: str = "repro"
    sweep: Optional[str] = None
    project_dir: Optional[str] = None
    # factors: null = not passed (the entry point's default applies)
    seed: Optional[int] = 1
    repeat: int = 0
    op_determinism: Optional[bool] = None
    threads: Optional[int] = None
    tf32: Optional[bool] = None
    onednn: Optional[bool] = None
    xla: Any = None  # auto | true | false: the examples take a string, a bool would read "True"
    keras_backend: Optional[str] = None
    augmentation_workers: Optional[int] = None  # nnU-Net's nnUNet_n_proc_DA (example nnunet_segmentation)
    params: Dict[str, Any] = field(default_factory=dict)
    detach: bool = False
    force: bool = False
    dry_run: bool = False
    poll_interval: float = 2.0
    repro: RunConf = field(default_factory=RunConf)


def register(store: Optional[ConfigStore] = None) -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent)."""
    cs = store or ConfigStore.instance()
    cs.store(name="repro_sweep", node=SweepConf, provider="repro_mlflow")
    cs.store(name="repro_run", node=RunConf, package="repro", provider="repro_mlflow")


register()
