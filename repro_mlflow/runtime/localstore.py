"""A run's local store on MLflow's SQLite store (issue 23, step 1; not yet the store the worker uses).

MLflow's file store is deprecated; its SQL store is supported for the long run, but migrating an
empty SQLite database costs seconds. So an empty, migrated database is made once per MLflow version
(`template()`, cached under `$REPRO_HOME/cache/`, made by the MLflow of the environment that uses it:
an older MLflow refuses a database migrated by a newer one) and each run's store is a copy of it
(`create()`): a file copy plus one experiment and one run made through MLflow's public client.

Everything here goes through `MlflowClient` on a `sqlite:///` URI: no MLflow format is written by
hand. mlflow is imported inside the functions (this module is on the worker's import path).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

DB_FILE = "store.db"
ARTIFACTS_DIR = "artifacts"
EXPERIMENT_NAME = "repro-local"


def db_uri(path: str | Path) -> str:
    """The MLflow tracking URI of the SQLite database at `path`."""
    return "sqlite:///" + str(Path(path).resolve())


def _cache_dir() -> Path:
    home = os.environ.get("REPRO_HOME") or os.path.join(os.path.expanduser("~"), ".repro")
    return Path(home) / "cache"


def template(cache_dir: str | Path | None = None) -> Path:
    """The empty migrated database of this environment's MLflow version; made on first use.

    Made in a temporary file and renamed into place, so concurrent first runs never see half a
    database (two may both make one; the last rename wins, both are complete).
    """
    import mlflow  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    path = cache / f"localstore-mlflow-{mlflow.__version__}.db"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=cache)
    os.close(fd)
    os.unlink(tmp)
    try:
        # the first client call on the URI creates and migrates the schema
        MlflowClient(tracking_uri=db_uri(tmp)).search_experiments()
        _dispose(db_uri(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _dispose(uri: str) -> None:
    """Close MLflow's cached engine on `uri` (so the file can be renamed or copied safely)."""
    try:
        from mlflow.tracking._tracking_service.utils import _get_store  # noqa: PLC0415

        engine = getattr(_get_store(uri), "engine", None)
        if engine is not None:
            engine.dispose()
    except Exception:  # noqa: BLE001  (best effort: a private helper of MLflow's)
        pass


def create(store_dir: str | Path, cache_dir: str | Path | None = None) -> tuple[str, str, str]:
    """Make a run's local store in `store_dir`: a copy of the template, one experiment whose
    artifacts lie in `store_dir/artifacts`, one RUNNING run. Returns (tracking URI, experiment id, run id)."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    d = Path(store_dir).resolve()
    d.mkdir(parents=True, exist_ok=True)
    db = d / DB_FILE
    if db.exists():
        raise FileExistsError(f"{db} exists already: a local store is made once per run")
    shutil.copyfile(template(cache_dir), db)
    uri = db_uri(db)
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(EXPERIMENT_NAME, artifact_location=(d / ARTIFACTS_DIR).as_uri())
    run = client.create_run(exp_id, run_name="local")
    return uri, exp_id, run.info.run_id


__all__ = ["create", "db_uri", "template"]
