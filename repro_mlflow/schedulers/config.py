"""Backend config: parsed from `--backend-config` (a dict or a .json path) into a dataclass, strictly."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ReproError

C = TypeVar("C")


def _mlflow_keys() -> set[str]:
    """Keys that `mlflow run` itself adds to every backend config (imported here: `repro status` rebuilds
    schedulers and must not pay for MLflow's import)."""
    from mlflow.projects import utils as pu

    return {pu.PROJECT_ENV_MANAGER, pu.PROJECT_SYNCHRONOUS, pu.PROJECT_DOCKER_ARGS, pu.PROJECT_STORAGE_DIR,
            pu.PROJECT_BUILD_IMAGE, pu.PROJECT_DOCKER_AUTH, pu.MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG}


def load_backend_config(raw: dict | str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a backend config into (user keys, MLflow's own keys)."""
    if raw is None:
        return {}, {}
    if isinstance(raw, str):
        path = Path(raw)
        try:
            raw = json.loads(path.read_text()) if path.suffix == ".json" else json.loads(raw)
        except FileNotFoundError:
            raise ReproError(f"backend config file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ReproError(f"backend config is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ReproError("backend config must be a JSON object")
    keys = _mlflow_keys()
    user = {k: v for k, v in raw.items() if k not in keys}
    own = {k: v for k, v in raw.items() if k in keys}
    return user, own


def parse_config(cls: type[C], values: dict[str, Any], backend: str) -> C:
    """Build the dataclass `cls` from `values`; unknown keys and wrong types are one-line errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ReproError(f"unknown {backend} backend-config key(s): {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        _check_type(key, value, hints[key], backend)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ReproError(f"{backend} backend config: {e}") from None


def _check_type(key: str, value: Any, hint: Any, backend: str) -> None:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    allowed = args if origin in (typing.Union, __import__("types").UnionType) else (hint,)
    for a in allowed:
        base = typing.get_origin(a) or a
        if a is type(None) and value is None:
            return
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if base not in (int, float) and isinstance(base, type) and isinstance(value, base):
            return
    names = "/".join(getattr(typing.get_origin(a) or a, "__name__", str(a)) for a in allowed)
    raise ReproError(f"{backend} backend-config key '{key}' must be {names}, got {value!r}")
