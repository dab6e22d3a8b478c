"""A run's local store: MLflow's SQLite store, written by the entry point through MLflow's own client.

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


def default_cache_dir() -> Path:
    """`$REPRO_CACHE_DIR`, else `$REPRO_HOME/cache` (default `~/.repro/cache`)."""
    if os.environ.get("REPRO_CACHE_DIR"):
        return Path(os.environ["REPRO_CACHE_DIR"])
    home = os.environ.get("REPRO_HOME") or os.path.join(os.path.expanduser("~"), ".repro")
    return Path(home) / "cache"


def template(cache_dir: str | Path | None = None) -> Path:
    """The empty migrated database of this environment's MLflow version; made on first use.

    Made in a temporary file and renamed into place, so concurrent first runs never see half a
    database (two may both make one; the last rename wins, both are complete).
    """
    import mlflow  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
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


def artifact_root(store_dir: str | Path) -> Path:
    """Where the artifacts of the store in `store_dir` lie, wherever the store was moved to."""
    return Path(store_dir).resolve() / ARTIFACTS_DIR


def _local_path(uri: str) -> Path:
    from urllib.parse import urlparse  # noqa: PLC0415
    from urllib.request import url2pathname  # noqa: PLC0415

    return Path(url2pathname(urlparse(uri).path)) if "://" in uri else Path(uri)


class SqlLocalRun:
    """Incremental reader (and the few writes the runtime makes) of the one run of a SQLite local
    store, through `MlflowClient` only. The reading side the replay (runtime/replay.py) uses.

    `store_dir`: where the store lies now. The database holds absolute artifact URIs of where it was
    written (an HTCondor sandbox, another host); they are re-rooted under `store_dir/artifacts` on read.
    `attempt_times`: a requeued job logs on into the same local run; the ms time each later attempt
    began. A point of a later attempt at a step an earlier attempt logged is left out (every step once).
    """

    def __init__(self, uri: str, run_id: str, store_dir: str | Path | None = None,
                 attempt_times: list[int] | None = None):
        from mlflow.tracking import MlflowClient  # noqa: PLC0415

        self.client, self.run_id, self.uri = MlflowClient(tracking_uri=uri), run_id, uri
        self._sql = None  # MLflow's SqlAlchemyStore on the same database: paged metric reads
        self.read: dict[str, int] = {}  # metric key -> points read so far, in the store's history order
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self.attempt_times = sorted(int(t) for t in attempt_times or [])
        self.seen: dict[str, set[tuple]] = {}  # metric key -> points returned (a SQL store holds each point once)
        self.steps: dict[str, list[set[int]]] = {}  # metric key -> steps read, per attempt
        self._exp_root: Path | None = None

    def params(self, settle_s: float = 0.0) -> dict[str, str]:
        return dict(self.client.get_run(self.run_id).data.params)

    def tags(self) -> dict[str, str]:
        return {k: v for k, v in self.client.get_run(self.run_id).data.tags.items() if not k.startswith("mlflow.")}

    def metric_keys(self) -> set[str]:
        return set(self.client.get_run(self.run_id).data.metrics)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def add_file(self, file: str | Path, artifact_path: str) -> None:
        """Log `file` as the artifact `artifact_path` (a file path inside the run's artifacts)."""
        import tempfile  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / Path(artifact_path).name
            shutil.copyfile(file, dest)
            parent = Path(artifact_path).parent.as_posix()
            self.client.log_artifact(self.run_id, str(dest), None if parent == "." else parent)

    def inputs(self) -> list:
        """The run's dataset inputs (`mlflow.log_input`): `DatasetInput`s, as MLflow keeps them."""
        inputs = self.client.get_run(self.run_id).inputs
        return list(getattr(inputs, "dataset_inputs", None) or [])

    def model_io(self) -> tuple[list, list]:
        """The run's model inputs (`LoggedModelInput`) and outputs (`LoggedModelOutput`; `log_model` in a
        run logs one), in local model ids."""
        run = self.client.get_run(self.run_id)
        outputs = getattr(run, "outputs", None)
        return (list(getattr(run.inputs, "model_inputs", None) or []),
                list(getattr(outputs, "model_outputs", None) or []))

    def logged_models(self) -> list:
        """The logged models of the local store (each with its params, tags and linked metrics), oldest first:
        the run's and those made without a run (the store holds this run only)."""
        exp_id = self.client.get_run(self.run_id).info.experiment_id
        out, token = [], None
        while True:
            page = self.client.search_logged_models(experiment_ids=[exp_id], page_token=token)
            out.extend(m for m in page if m.source_run_id in (None, "", self.run_id))
            token = page.token
            if not token:
                return sorted(out, key=lambda m: m.creation_timestamp)

    def model_files(self, uri: str) -> Path:
        """The local folder of a logged model's artifact location, where the store lies now."""
        return self._reroot(uri)

    def not_replayed(self) -> dict[str, int]:
        """{kind: how many} of what the run holds and the replay does not deliver as itself (nothing:
        params, tags, metrics, artifacts, datasets, logged models and model inputs/outputs all are)."""
        return {}

    def _history(self, key: str, full: bool = True) -> list:
        """`key`'s points in the store's history order (timestamp, step, value); not `full`: only those after
        the points read so far, so a mirror polling a long run reads each point once, not its whole history
        every second. A point logged with an earlier timestamp than one read already sorts before the
        offset and is read by the next full read (the replay's final step makes one)."""
        if self._sql is None:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # noqa: PLC0415

            self._sql = SqlAlchemyStore(self.uri, (Path(self.store_dir or ".").resolve() / ARTIFACTS_DIR).as_uri())  # for reads only
        from mlflow.utils.search_utils import SearchUtils  # noqa: PLC0415

        start = 0 if full else self.read.get(key, 0)
        points = list(self._sql.get_metric_history(self.run_id, key, page_token=SearchUtils.create_page_token(start)
                                                   if start else None))
        self.read[key] = start + len(points)
        return points

    def _earlier_step(self, key: str, m) -> bool:
        """Whether point `m` repeats a step an earlier attempt logged (and note its step)."""
        if not self.attempt_times:
            return False
        attempt = sum(1 for t in self.attempt_times if m.timestamp >= t)
        seen = self.steps.setdefault(key, [set() for _ in range(len(self.attempt_times) + 1)])
        if any(m.step in seen[a] for a in range(attempt)):
            return True
        seen[attempt].add(m.step)
        return False

    def new_points(self, key: str | None = None, since_start: bool = False, full: bool = False) -> dict[str, list]:
        """Points logged since the last call ({key: [Metric]}), each returned once; `since_start`: all of `key`'s;
        `full`: every point read again (a back-dated one included), the new ones returned."""
        out: dict[str, list] = {}
        keys = [key] if key is not None else sorted(self.metric_keys())
        for k in keys:
            seen = self.seen.setdefault(k, set())
            for m in self._history(k, full=since_start or full):
                p = (m.value, m.step, m.timestamp)
                if self._earlier_step(k, m):
                    continue
                if p in seen and not since_start:
                    continue
                seen.add(p)
                out.setdefault(k, []).append(m)
        return out

    def _reroot(self, uri: str) -> Path:
        """The local folder of an artifact URI of this store, where the store lies now."""
        path = _local_path(uri)
        if self.store_dir is None:
            return path
        if self._exp_root is None:
            exp_id = self.client.get_run(self.run_id).info.experiment_id
            self._exp_root = _local_path(self.client.get_experiment(exp_id).artifact_location)
        try:
            return artifact_root(self.store_dir) / path.relative_to(self._exp_root)
        except ValueError:
            return path

    def _model_dirs(self) -> dict[str, Path]:
        """{name: files} of the finished MLflow 3 logged models of this run (`mlflow.<flavor>.log_model`)."""
        run = self.client.get_run(self.run_id)
        try:
            models = self.client.search_logged_models(experiment_ids=[run.info.experiment_id])
        except Exception:  # noqa: BLE001 - an MLflow without logged models
            return {}
        return {m.name: self._reroot(m.artifact_location) for m in models
                if m.source_run_id == self.run_id and m.name and str(m.status).endswith("READY")}

    def artifacts(self) -> dict[str, tuple[int, int, Path]]:
        """{artifact path: (size, mtime in ns, file)}: the run's own artifacts. A logged model's files are
        not among them, as under plain MLflow 3: they go once, to the server's LoggedModel
        (runtime/logged_models.py), and `runs:/<real run>/<name>` finds them there by the model's name."""
        return walk_artifacts({"": self._reroot(self.client.get_run(self.run_id).info.artifact_uri)})


def walk_artifacts(roots: dict[str, Path]) -> dict[str, tuple[int, int, Path]]:
    """{prefix + path under root: (size, mtime in ns, file)} of every file under each root (the first root wins)."""
    out: dict[str, tuple[int, int, Path]] = {}
    for prefix, root in roots.items():
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except OSError:
                    continue
                out.setdefault(prefix + p.relative_to(root).as_posix(), (st.st_size, st.st_mtime_ns, p))
    return out


__all__ = ["SqlLocalRun", "artifact_root", "create", "db_uri", "template", "walk_artifacts"]
