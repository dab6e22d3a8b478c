"""The model registry is not local-first: inside a repro run it answers with one line saying how to
reach the real server, instead of registering a model in the run's local store where nobody sees it.

The worker points the entry point's `MLFLOW_REGISTRY_URI` at `repro-local-first:` (unless the user set
one), a scheme this package registers with MLflow (entry point group `mlflow.model_registry_store`).
Imported by MLflow only when the entry point touches the registry; stdlib + mlflow-skinny only.
"""

from __future__ import annotations

import os

SCHEME = "repro-local-first"
URI = f"{SCHEME}:"


def message() -> str:
    real = os.environ.get("REPRO_TRACKING_URI") or "the tracking server"
    return (f"the model registry is not local-first in a repro run (its MLflow store is local): register "
            f"with mlflow.MlflowClient(registry_uri=os.environ['REPRO_TRACKING_URI']) ({real}), or from the submit side")


def local_first_registry(store_uri: str | None = None, tracking_uri: str | None = None):
    """MLflow's registry-store builder for `repro-local-first:`: refuses, in one line."""
    from mlflow.exceptions import MlflowException

    raise MlflowException(message())


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
