"""The run's local store: where the entry point logs, always (docs/architecture.md, "Local-first logging").

`$REPRO_OFFLINE_DIR` holds MLflow's SQLite store `store.db` (a copy of a migrated empty database,
`runtime/localstore.py`) with one experiment and one run, its artifacts under `artifacts/`, and
`bundle.json` naming the real run it stands for, the real tracking URI and how the command ended.
The worker's mirror (`runtime/mirror.py`) copies it into the real run while the command runs;
whatever it could not deliver stays there for `repro sync` (the same replay, `runtime/replay.py`).
A bundle of the previous layout (MLflow's file store `mlruns/`, made before 2026-12) is still
replayed by `repro sync` (read as files, `replay.LocalRun`); nothing new is written in it.

Making the store imports mlflow (`start`); everything else here is stdlib only.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUNDLE_FILE = "bundle.json"
DB_FILE = "store.db"  # localstore.DB_FILE
STORE_DIR = "mlruns"  # the previous layout
LOCK_FILE = ".replay.lock"  # held by whoever replays the bundle (the worker's mirror, `repro sync`)

# MLflow's HTTP client settings for one quick try: inside the entry point a read or a registry call
# to a server that is away is said at once, not after MLflow's minutes of retries
QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextmanager
def quick_requests() -> Iterator[None]:
    """MLflow's HTTP requests made inside make one try, with a 10 s timeout (`QUICK`)."""
    saved = {k: os.environ.get(k) for k in QUICK}
    os.environ.update(QUICK)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reachable(uri: str | None, timeout: float | None = None) -> bool:
    """Whether the tracking store at `uri` can be used from here.

    http(s): `GET <uri>/health` answers within `timeout` seconds (any HTTP answer counts: the server
    is there). sqlite / file: the database file or store directory exists. Anything else: assumed yes.
    """
    if not uri:
        return True
    timeout = float(os.environ.get("REPRO_HEALTH_TIMEOUT", "5")) if timeout is None else timeout
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        # imported here: urllib.request costs 30 ms on every run's start path
        from urllib.error import HTTPError, URLError  # noqa: PLC0415
        from urllib.request import urlopen  # noqa: PLC0415

        import re  # noqa: PLC0415

        try:  # without any user:password@ (urllib cannot open such a URL; /health needs no credentials)
            with urlopen(re.sub(r"//[^/@]*@", "//", uri, count=1).rstrip("/") + "/health", timeout=timeout):
                return True
        except HTTPError:
            return True
        except (URLError, OSError, ValueError):
            return False
    if scheme.startswith("sqlite"):
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
        return path == ":memory:" or Path(path).exists()
    if scheme == "file" or scheme == "":
        path = urllib.parse.urlparse(uri).path if scheme == "file" else uri
        return Path(path).exists()
    return True


def is_legacy(offline_dir: str | Path) -> bool:
    """Whether `offline_dir` is a bundle of the previous layout (an MLflow file store `mlruns/`)."""
    d = Path(offline_dir)
    return not (d / DB_FILE).is_file() and (d / STORE_DIR).is_dir()


def store_uri(offline_dir: str | Path) -> str:
    """The MLflow tracking URI of the local store in `offline_dir` (where it lies now)."""
    return "sqlite:///" + str(Path(offline_dir).resolve() / DB_FILE)


def start(offline_dir: str | Path, real_run_id: str, tracking_uri: str | None,
          real_experiment_id: str | None = None) -> tuple[str, str]:
    """Create the local store and its run; write bundle.json. Returns (local tracking URI, local run id).
    `real_experiment_id`: the real run's experiment (the entry point sees it instead of the local one).

    A requeued job (bundle.json of the same real run there) logs on into the same local run; the
    time its attempt began is noted so that a step an earlier attempt logged reaches the real run once."""
    d = Path(offline_dir).resolve()
    now = int(time.time() * 1000)
    if (d / BUNDLE_FILE).is_file() and (d / DB_FILE).is_file():
        meta = read_bundle(d)
        if meta.get("run_id") == real_run_id and meta.get("offline_run_id"):
            times = [*(meta.get("attempt_times") or []), now]
            meta.update(status=None, reason=None, end_time=None, attempt_times=times)
            meta.setdefault("real_experiment_id", real_experiment_id)
            write_bundle(d, meta)
            return store_uri(d), meta["offline_run_id"]
    if is_legacy(d):
        raise RuntimeError(f"{d} holds a local store of the previous layout (mlruns/): replay it with "
                           "`repro sync` and remove it before the job runs again")
    from . import localstore  # noqa: PLC0415  (imports mlflow)

    d.mkdir(parents=True, exist_ok=True, mode=0o700)  # the run's local store: its owner's alone
    _uri, exp_id, run_id = localstore.create(d)
    os.chmod(d / DB_FILE, 0o600)
    write_bundle(d, {"run_id": real_run_id, "offline_run_id": run_id, "experiment_id": exp_id, "store": "sqlite",
                     "real_experiment_id": real_experiment_id,
                     "tracking_uri": tracking_uri, "status": None, "reason": None, "start_time": now,
                     "end_time": None})
    return store_uri(d), run_id


def requeued(offline_dir: str | Path) -> None:
    """Record in bundle.json that this attempt was stopped for a requeue (the run is not over)."""
    data = read_bundle(offline_dir)
    data.update(status=None, reason=None, end_time=None, requeued=int(data.get("requeued") or 0) + 1)
    write_bundle(offline_dir, data)


def read_bundle(offline_dir: str | Path) -> dict:
    """The bundle.json of `offline_dir`."""
    return json.loads((Path(offline_dir) / BUNDLE_FILE).read_text())


def write_bundle(offline_dir: str | Path, data: dict) -> None:
    """Write bundle.json atomically (a reader never sees half a file)."""
    d = Path(offline_dir)
    tmp = d / (BUNDLE_FILE + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(json.dumps(data, indent=1))
    os.replace(tmp, d / BUNDLE_FILE)


def finish(offline_dir: str | Path, status: str, reason: str | None, end_time: int, **extra) -> None:
    """Record the run's final status (and e.g. `mirrored`) in bundle.json."""
    data = read_bundle(offline_dir)
    data.update(status=status, reason=reason, end_time=end_time, **extra)
    write_bundle(offline_dir, data)
