"""Every job's run description, composed fast.

Hydra composes once per distinct choice of config groups (`example=…`, `hardware=…`); a 1,000-run
sweep has a handful. Each job's value overrides (`seed=2`, `example.params.epochs=1`) are then
applied to that composition's resolved `repro` node directly, following the node's plain
references (`factors.seed: ${seed}`), which is three orders of magnitude cheaper than composing.
Each distinct value is first set, as Hydra sets it (`OmegaConf.update`), on one scratch copy of the
composition, so the schema converts or refuses it (`threads=2` is 2, `threads=abc` goes to Hydra).
Whatever the fast path cannot prove equivalent (adds, deletes, dict or list values, references of
references, string interpolation, relative references, a value the schema refuses) is composed by
Hydra (`ConfigLoader.load_sweep_config`, public), whose error, if any, is the job's, on one line.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from ..errors import ReproError
from .report import one_line

_REF = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")
_WHOLE_REF = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")
_MISSING = object()


def _walk(d: Any, path: tuple = ()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _walk(v, path + (str(k),))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _walk(v, path + (str(i),))
    else:
        yield path, d


def _copy(x: Any) -> Any:
    """A copy of plain config data (dicts, lists, scalars): copy.deepcopy's result, several times faster."""
    if type(x) is dict:
        return {k: _copy(v) for k, v in x.items()}
    if type(x) is list:
        return [_copy(v) for v in x]
    return x if isinstance(x, (str, int, float, type(None))) else copy.deepcopy(x)


def _get(d: Any, keys: Sequence[str]) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return _MISSING
        d = d[k]
    return d


def _set(d: dict, keys: Sequence[str], value: Any, add: bool = False) -> bool:
    for k in keys[:-1]:
        d = d.get(k)
        if not isinstance(d, dict):
            return False
    if not isinstance(d, dict) or (keys[-1] not in d and not add):
        return False
    d[keys[-1]] = _copy(value)
    return True


class _Base:
    """One Hydra composition: its config, the resolved node, and how the node refers to the rest."""

    def __init__(self, cfg: DictConfig, node: str) -> None:
        self.cfg, self.node = cfg, node
        raw = OmegaConf.to_container(cfg, resolve=False)
        raw.pop("hydra", None)
        self.raw = raw
        self.resolved = OmegaConf.to_container(cfg[node], resolve=True)
        self.refs: list[tuple[tuple[str, ...], str]] = []  # (path in node, referenced key) for whole-value refs
        self.fast = True
        chained: set[str] = set()
        for path, value in _walk(raw):
            if not isinstance(value, str) or "${" not in value:
                continue
            if "${." in value:
                self.fast = False
            whole = _WHOLE_REF.match(value)
            if path[0] == node and whole:
                self.refs.append((path[1:], whole.group(1)))
            else:
                chained.update(_REF.findall(value))
        self.chained = chained  # keys referenced other than directly by the node
        self._scratch: DictConfig | None = None  # where each distinct value is set once, as Hydra sets it
        self._values: dict[str, Any] = {}  # override line -> the value the schema made of it (_MISSING: refused)

    def _value(self, o: Override) -> Any:
        """The override's value as the composition's schema takes it, or _MISSING when only Hydra can tell."""
        line = str(o.input_line)
        if line not in self._values:
            if self._scratch is None:
                self._scratch = copy.deepcopy(self.cfg)
            try:
                OmegaConf.update(self._scratch, o.key_or_group, o.value(), merge=True, force_add=o.is_force_add())
                v = OmegaConf.select(self._scratch, o.key_or_group)
            except Exception:  # noqa: BLE001 - refused: Hydra composes the job and says why
                v = _MISSING
            self._values[line] = _MISSING if isinstance(v, (DictConfig, list)) or OmegaConf.is_config(v) else v
        return self._values[line]

    def _related(self, key: str, refs: set[str]) -> bool:
        return any(key == r or key.startswith(r + ".") or r.startswith(key + ".") for r in refs)

    def apply(self, overrides: Sequence[Override]) -> dict | None:
        """The node with `overrides` applied, or None when only Hydra can tell."""
        if not self.fast:
            return None
        out = _copy(self.resolved)
        for o in overrides:
            if o.is_add() or o.is_delete() or o.package is not None or o.is_sweep_override():
                return None
            key = o.key_or_group
            keys = key.split(".")
            value = o.value()
            if isinstance(value, (dict, list)) or isinstance(value, str) and "${" in value:
                return None
            current = _get(self.raw, keys)
            add = o.is_force_add() and current is _MISSING
            if add and not isinstance(_get(self.raw, keys[:-1]), dict):
                return None
            if (current is _MISSING and not add) or isinstance(current, (str, dict, list)) and "${" in str(current):
                return None  # unknown key (Hydra's error) or an override of an interpolation
            if self._related(key, self.chained):
                return None
            value = self._value(o)
            if value is _MISSING:
                return None
            if keys[0] == self.node:
                if not _set(out, keys[1:], value, add):
                    return None
                continue
            for path, ref in self.refs:
                if key == ref:
                    target, v = path, value
                elif key.startswith(ref + "."):
                    target, v = path + tuple(key[len(ref) + 1:].split(".")), value
                elif ref.startswith(key + "."):
                    v = _get(value, ref[len(key) + 1:].split("."))
                    if v is _MISSING:
                        return None
                    target = path
                else:
                    continue
                if not target:
                    return None
                if not _set(out, target, v, add):
                    return None
        return out


class JobComposer:
    """Composes `node` of each job's config from the sweep's master config and the job's overrides."""

    def __init__(self, config_loader: Any, master_config: DictConfig, node: str = "repro") -> None:
        self.loader, self.master, self.node = config_loader, master_config, node
        self.parser = OverridesParser.create(config_loader=config_loader)
        self.groups = self._all_groups("")
        self._base: dict[tuple[str, ...], _Base] = {}
        self._parsed: dict[str, Override] = {}  # each distinct override string is parsed once
        self.slow = 0  # jobs that needed Hydra

    def _all_groups(self, parent: str) -> set[str]:
        out: set[str] = set()
        for g in self.loader.list_groups(parent):
            name = f"{parent}/{g}" if parent else g
            out.add(name)
            out |= self._all_groups(name)
        return out

    def _base_for(self, group_ovs: tuple[str, ...]) -> _Base:
        base = self._base.get(group_ovs)
        if base is None:
            cfg = self._compose(group_ovs)
            if self.node not in cfg:
                raise ReproError(f"the job config has no '{self.node}' node describing its MLflow run (see docs/sweep.md)")
            base = self._base[group_ovs] = _Base(cfg, self.node)
        return base

    def _compose(self, overrides: Sequence[str]) -> DictConfig:
        """Hydra's composition of the sweep's config with `overrides`; its error on one line."""
        try:
            return self.loader.load_sweep_config(self.master, list(overrides))
        except Exception as e:  # noqa: BLE001 - Hydra/OmegaConf errors, reported on one line
            raise ReproError(one_line(e)) from None

    def job(self, overrides: Sequence[str], fast: bool = True) -> dict:
        """The job's `node` as plain, resolved Python data."""
        new = [o for o in dict.fromkeys(overrides) if o not in self._parsed]
        if new:
            self._parsed.update(zip(new, self.parser.parse_overrides(new)))
        parsed = [self._parsed[o] for o in overrides]
        group_ovs = tuple(o.input_line for o in parsed if o.key_or_group in self.groups)
        values = [o for o in parsed if o.key_or_group not in self.groups and not o.key_or_group.startswith("hydra.")]
        base = self._base_for(group_ovs)
        result = base.apply(values) if fast else None
        if result is not None:
            return result
        self.slow += 1
        cfg = self._compose(overrides)
        try:
            return OmegaConf.to_container(cfg[self.node], resolve=True)
        except Exception as e:  # noqa: BLE001 - Hydra/OmegaConf errors, reported on one line
            raise ReproError(one_line(e)) from None
