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


class SqlLocalRun:
    """Incremental reader of the one run of a SQLite local store, through `MlflowClient` only
    (the reading side of `runtime/replay.py:LocalRun`, for the store `create()` makes)."""

    def __init__(self, uri: str, run_id: str):
        from mlflow.tracking import MlflowClient  # noqa: PLC0415

        self.client, self.run_id = MlflowClient(tracking_uri=uri), run_id
        self.seen: dict[str, dict[tuple, int]] = {}  # metric key -> {(value, step, timestamp): times read}

    def params(self) -> dict[str, str]:
        return dict(self.client.get_run(self.run_id).data.params)

    def tags(self) -> dict[str, str]:
        return {k: v for k, v in self.client.get_run(self.run_id).data.tags.items() if not k.startswith("mlflow.")}

    def new_points(self) -> dict[str, list]:
        """Points logged since the last call ({key: [Metric]}), each returned once."""
        out: dict[str, list] = {}
        for key in self.client.get_run(self.run_id).data.metrics:
            seen = self.seen.setdefault(key, {})
            left = dict(seen)
            for m in sorted(self.client.get_metric_history(self.run_id, key), key=lambda m: (m.timestamp, m.step)):
                p = (m.value, m.step, m.timestamp)
                if left.get(p, 0) > 0:
                    left[p] -= 1
                    continue
                seen[p] = seen.get(p, 0) + 1
                out.setdefault(key, []).append(m)
        return out

    def artifacts(self) -> dict[str, tuple[int, int, Path]]:
        """{artifact path: (size, mtime in ns, file)} of the run's artifact folder (a local folder)."""
        from urllib.parse import urlparse  # noqa: PLC0415
        from urllib.request import url2pathname  # noqa: PLC0415

        root = Path(url2pathname(urlparse(self.client.get_run(self.run_id).info.artifact_uri).path))
        out = {}
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except OSError:
                    continue
                out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, p)
        return out


__all__ = ["SqlLocalRun", "create", "db_uri", "template"]
