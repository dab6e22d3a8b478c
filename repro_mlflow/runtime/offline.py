"""Worker side of the offline results contract (docs/architecture.md).

When the tracking URI cannot be reached from the worker and `REPRO_OFFLINE_DIR` is set (or
`REPRO_OFFLINE=1` forces it), the run is logged to an MLflow file store `$REPRO_OFFLINE_DIR/mlruns`
and `$REPRO_OFFLINE_DIR/bundle.json` says which real run it stands for and how it ended.
Stdlib + mlflow only.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path

BUNDLE_FILE = "bundle.json"
STORE_DIR = "mlruns"
OFFLINE_EXPERIMENT_ID = "0"


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

        try:
            with urlopen(uri.rstrip("/") + "/health", timeout=timeout):
                return True
        except HTTPError:
            return True
        except (URLError, OSError, ValueError):
            return False
    if scheme == "sqlite":
        path = uri[len("sqlite:///"):]
        return path == ":memory:" or Path(path if path.startswith("/") else path).exists()
    if scheme == "file" or scheme == "":
        path = urllib.parse.urlparse(uri).path if scheme == "file" else uri
        return Path(path).exists()
    return True


def wants_offline(tracking_uri: str | None, offline_dir: str | None) -> bool:
    """Offline when forced (`REPRO_OFFLINE=1`), or when the store is unreachable and there is somewhere to log to."""
    if os.environ.get("REPRO_OFFLINE") == "1":
        return True
    return bool(offline_dir) and not reachable(tracking_uri)


def store_uri(offline_dir: str | Path) -> str:
    """The MLflow tracking URI of the offline file store in `offline_dir`."""
    return (Path(offline_dir).resolve() / STORE_DIR).as_uri()


def start(offline_dir: str | Path, real_run_id: str, tracking_uri: str | None) -> tuple[str, str]:
    """Create the offline store and run; write bundle.json. Returns (offline tracking URI, offline run id)."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow keeps the file store behind this switch
    from mlflow.tracking import MlflowClient

    d = Path(offline_dir)
    d.mkdir(parents=True, exist_ok=True)
    uri = store_uri(d)
    client = MlflowClient(uri)
    run = client.create_run(OFFLINE_EXPERIMENT_ID, tags={"repro.offline": "1"})
    write_bundle(d, {"run_id": real_run_id, "offline_run_id": run.info.run_id,
                     "experiment_id": OFFLINE_EXPERIMENT_ID, "tracking_uri": tracking_uri,
                     "status": None, "reason": None, "start_time": int(time.time() * 1000), "end_time": None})
    return uri, run.info.run_id


def read_bundle(offline_dir: str | Path) -> dict:
    """The bundle.json of `offline_dir`."""
    return json.loads((Path(offline_dir) / BUNDLE_FILE).read_text())


def write_bundle(offline_dir: str | Path, data: dict) -> None:
    """Write bundle.json atomically (a reader never sees half a file)."""
    d = Path(offline_dir)
    tmp = d / (BUNDLE_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, d / BUNDLE_FILE)


def finish(offline_dir: str | Path, status: str, reason: str | None, end_time: int) -> None:
    """Record the run's final status in bundle.json."""
    data = read_bundle(offline_dir)
    data.update(status=status, reason=reason, end_time=end_time)
    write_bundle(offline_dir, data)
