"""The `repro-local-first:` scheme's entry points (pyproject.toml): MLflow's tracking store and model
registry store inside a repro run (runtime/localfirst.py, runtime/registration.py).

MLflow takes the registry URI from the tracking URI, so the entry point's registry is
`repro-local-first:///<offline dir>` too, unless the user set `MLFLOW_REGISTRY_URI`. Imported by MLflow
at its registration of entry points (inside `import mlflow`): stdlib only at the top.
"""

from __future__ import annotations


SCHEME = "repro-local-first"


def local_first_registry(store_uri: str | None = None, tracking_uri: str | None = None):
    """MLflow's registry-store builder for `repro-local-first:///<offline dir>` (runtime/registration.py)."""
    from .registration import LocalFirstRegistry  # noqa: PLC0415

    return LocalFirstRegistry(store_uri, tracking_uri)


def local_first_tracking(store_uri: str | None = None, artifact_uri: str | None = None):
    """MLflow's tracking-store builder for `repro-local-first:///<offline dir>` (runtime/localfirst.py;
    imported here, not at MLflow's registration of entry points, which runs inside `import mlflow`)."""
    from .localfirst import LocalFirstStore  # noqa: PLC0415

    return LocalFirstStore(store_uri, artifact_uri)


def available(group: str = "mlflow.model_registry_store") -> bool:
    """True when MLflow can find this package's `SCHEME` in entry point `group` (`mlflow.tracking_store`:
    runtime/localfirst.py): repro-mlflow is installed (not a runtime zip on PYTHONPATH)."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        return any(e.group == group and e.name == SCHEME for e in distribution("repro-mlflow").entry_points)
    except (PackageNotFoundError, OSError):
        return False
