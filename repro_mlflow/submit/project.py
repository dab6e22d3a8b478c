"""Read an MLflow project, check parameters against their declared types, build the command.

MLproject parameter types that MLflow knows (string, float, path, uri) are kept; repro adds
`int`, `bool`, an optional `choices: [...]`, for numbers optional bounds `min` and `max`
(inclusive), and `required_when: {other: value}` (this one must be non-empty when `other` has
that value), which MLflow itself ignores, so that bad input is refused before any run exists.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import yaml

from ..errors import ReproError
from ..schedulers.protocol import RunSpec

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def load_entry_points(project_dir: Path) -> dict[str, dict]:
    """The raw `entry_points` mapping of `project_dir/MLproject`."""
    path = Path(project_dir) / "MLproject"
    if not path.is_file():
        raise ReproError(f"no MLproject file in {project_dir}")
    return _parsed(str(path.resolve()), path.stat().st_mtime_ns)[0]


@functools.lru_cache(maxsize=16)
def _parsed(path: str, _mtime_ns: int) -> tuple[dict[str, dict], object]:
    """(raw entry points, MLflow's project object) of one MLproject file; cached per file version,
    so a 1,000-run sweep parses it once."""
    from mlflow.projects._project_spec import load_project

    data = yaml.safe_load(Path(path).read_text()) or {}
    return data.get("entry_points") or {}, load_project(str(Path(path).parent))


def check_params(entry_point: str, declared: dict, params: dict[str, str], allow_extra: bool = True) -> dict[str, str]:
    """Validate `params` against the declarations; return every declared parameter with defaults filled.

    With `allow_extra=False`, a parameter the entry point does not declare is refused when it declares any
    (MLflow would pass it on as `--name value`, and the command would fail later on an unknown argument).
    """
    undeclared = sorted(set(params) - set(declared))
    if undeclared and declared and not allow_extra:
        raise ReproError(f"{entry_point}: unknown parameter '{undeclared[0]}' (it takes: {', '.join(declared)}); "
                         "to pass it on anyway, set \"allow_extra_params\": true in --backend-config")
    out: dict[str, str] = {}
    for name, decl in declared.items():
        decl = decl if isinstance(decl, dict) else {"type": decl}
        if name in params:
            value = str(params[name])
        elif decl.get("default") is not None:
            value = str(decl["default"])
        else:
            raise ReproError(f"{entry_point}: missing value for parameter '{name}'")
        kind = decl.get("type", "string")
        if kind == "int":
            try:
                int(value)
            except ValueError:
                raise ReproError(f"{entry_point}: parameter '{name}' must be an integer, got '{value}'") from None
        elif kind == "float":
            try:
                float(value)
            except ValueError:
                raise ReproError(f"{entry_point}: parameter '{name}' must be a number, got '{value}'") from None
        elif kind == "bool":
            if value.lower() not in _TRUE | _FALSE:
                raise ReproError(f"{entry_point}: parameter '{name}' must be true or false, got '{value}'")
            value = "true" if value.lower() in _TRUE else "false"
        if kind in ("int", "float"):
            _check_bounds(entry_point, name, float(value), decl)
        choices = decl.get("choices")
        if choices and value not in [str(c) for c in choices]:
            raise ReproError(f"{entry_point}: parameter '{name}' must be one of {', '.join(map(str, choices))}, got '{value}'")
        out[name] = value
    for name, decl in declared.items():
        for other, wanted in ((decl.get("required_when") or {}) if isinstance(decl, dict) else {}).items():
            if out.get(other) == str(wanted) and not out[name]:
                raise ReproError(f"{entry_point}: parameter '{name}' is required when {other}={wanted}")
    for name, value in params.items():
        out.setdefault(name, str(value))  # undeclared: passed through as --name value, as MLflow does
    return out


def _check_bounds(entry_point: str, name: str, value: float, decl: dict) -> None:
    lo, hi = decl.get("min"), decl.get("max")
    if lo is not None and value < float(lo):
        raise ReproError(f"{entry_point}: parameter '{name}' must be at least {lo}, got {value:g}")
    if hi is not None and value > float(hi):
        raise ReproError(f"{entry_point}: parameter '{name}' must be at most {hi}, got {value:g}")


def make_spec(project_dir: Path, entry_point: str, params: dict[str, str], tags: dict[str, str] | None = None,
              allow_extra: bool = True) -> RunSpec:
    """A RunSpec for one entry point run, its parameters checked and its command built by MLflow
    (`allow_extra`: as `check_params`)."""
    eps = load_entry_points(project_dir)
    if entry_point not in eps:
        raise ReproError(f"unknown entry point '{entry_point}' (the project has: {', '.join(sorted(eps)) or 'none'})")
    checked = check_params(entry_point, eps[entry_point].get("parameters") or {}, params, allow_extra)
    mlproject = Path(project_dir) / "MLproject"
    project = _parsed(str(mlproject.resolve()), mlproject.stat().st_mtime_ns)[1]
    command = project.get_entry_point(entry_point).compute_command(checked, None)
    return RunSpec(entry_point=entry_point, params=checked, command=command, tags=dict(tags or {}))


def hash_config(entry_point: str, params: dict[str, str], software: dict) -> str:
    """The config hash (tag repro.config_hash): entry point, effective params and the software's identity,
    without repeat or target, so one config is compared across targets and repeats."""
    blob = json.dumps({"entry_point": entry_point, "params": params, "software": software}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
