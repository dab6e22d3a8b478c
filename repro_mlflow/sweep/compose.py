"""Every job's run description, composed fast: Hydra composes once per distinct choice of config groups,
and each job's value overrides (`seed=2`, `example.params.epochs=1`) are applied to a copy of that.

A full Hydra composition costs milliseconds; a 1,000-run sweep has a handful of group choices.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from ..errors import ReproError


class JobComposer:
    """Composes `node` of each job's config from the sweep's master config and the job's overrides."""

    def __init__(self, config_loader: Any, master_config: DictConfig, node: str = "repro") -> None:
        self.loader, self.master, self.node = config_loader, master_config, node
        self.parser = OverridesParser.create(config_loader=config_loader)
        self.groups = self._all_groups("")
        self._base: dict[tuple[str, ...], DictConfig] = {}

    def _all_groups(self, parent: str) -> set[str]:
        out: set[str] = set()
        for g in self.loader.list_groups(parent):
            name = f"{parent}/{g}" if parent else g
            out.add(name)
            out |= self._all_groups(name)
        return out

    def job(self, overrides: Sequence[str]) -> dict:
        """The job's `node` as plain, resolved Python data."""
        parsed = self.parser.parse_overrides(list(overrides))
        group_ovs = tuple(o.input_line for o in parsed if o.key_or_group in self.groups)
        values = [o for o in parsed if o.key_or_group not in self.groups and not o.key_or_group.startswith("hydra.")]
        base = self._base.get(group_ovs)
        if base is None:
            base = self.loader.load_sweep_config(self.master, list(group_ovs))
            if self.node not in base:
                raise ReproError(f"the job config has no '{self.node}' node describing its MLflow run (see docs/sweep.md)")
            self._base[group_ovs] = base
        cfg = copy.deepcopy(base)
        if values:
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        node = cfg[self.node]
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
