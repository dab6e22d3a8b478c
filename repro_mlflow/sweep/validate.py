"""Check repro-sweep's command line against conf/ before Hydra composes anything: one-line errors.

Catches an unknown example, target or software entry, an unknown factor or key, the same key given
twice with different values, and a sweep with no values. Anything subtler is left to Hydra and the
planner, which also fail before MLflow is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from ..errors import ReproError

WORDS = {"example": "example", "hardware": "target", "software": "software entry", "preset": "preset"}
# Hydra flags that take a value (the value is not an override)
_VALUE_FLAGS = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-p", "--package",
                "--experimental-rerun", "-i"}


def overrides_of(argv: Sequence[str]) -> list[str] | None:
    """The overrides in argv, or None when a custom config path/name/dir is given (then Hydra checks)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a.split("=", 1)[0] in {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir"}:
            return None
        if a in _VALUE_FLAGS:
            skip = True
            continue
        if a.startswith("-"):
            continue
        out.append(a)
    return out


def options(conf: Path, group: str) -> list[str]:
    d = conf / group
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def check(argv: Sequence[str], conf: Path) -> None:
    """Raise ReproError (one line) for bad input; silent when argv looks fine."""
    ovs = overrides_of(argv)
    if ovs is None:
        return
    primary = yaml.safe_load((conf / "config.yaml").read_text()) or {}
    keys = {k for k in primary if k != "defaults"}
    groups = {p.name for p in conf.iterdir() if p.is_dir()}
    try:
        parsed = OverridesParser.create().parse_overrides(ovs)
    except HydraException as e:
        raise ReproError(str(e).splitlines()[0]) from None
    seen: dict[str, str] = {}
    for o in parsed:
        key = o.key_or_group
        root = key.split(".", 1)[0].split("/", 1)[0]
        if root == "hydra":
            continue
        if o.is_delete():
            continue
        values = [str(v) for v in o.sweep_iterator()] if o.is_sweep_override() else [o.get_value_element_as_str()]
        if o.is_sweep_override() and not values:
            raise ReproError(f"empty sweep: '{o.input_line}' has no values")
        if key in seen and seen[key] != o.input_line:
            raise ReproError(f"conflicting overrides: '{seen[key]}' and '{o.input_line}'")
        seen[key] = o.input_line
        if key in groups:
            known = options(conf, key)
            for v in values:
                if v not in known:
                    raise ReproError(f"unknown {WORDS.get(key, key)} '{v}' (choose from: {', '.join(known)})")
        elif o.is_add() or o.is_force_add():
            continue
        elif root not in keys and root not in groups:
            raise ReproError(f"unknown factor or key '{key}' (known: {', '.join(sorted(keys - {'repro'}))}; "
                             f"groups: {', '.join(sorted(groups))})")
