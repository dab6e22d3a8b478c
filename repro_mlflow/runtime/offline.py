"""The run's local store: where the entry point logs, always (docs/architecture.md, "Local-first logging").

`$REPRO_OFFLINE_DIR` holds an MLflow file store `mlruns/` with one run in experiment `0`, and
`bundle.json` naming the real run it stands for, the real tracking URI and how the command ended.
The worker's mirror (`runtime/mirror.py`) copies it into the real run while the command runs;
whatever it could not deliver stays there for `repro sync` (the same replay, `runtime/replay.py`).

Creating the store is stdlib only (no MLflow import before the command starts): the two
`meta.yaml` files of MLflow's file store are written here, in its format.
Stdlib only.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid
from pathlib import Path

BUNDLE_FILE = "bundle.json"
STORE_DIR = "mlruns"
OFFLINE_EXPERIMENT_ID = "0"
LOCK_FILE = ".replay.lock"  # held by whoever replays the bundle (the worker's mirror, `repro sync`)


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
    if scheme.startswith("sqlite"):
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
        return path == ":memory:" or Path(path).exists()
    if scheme == "file" or scheme == "":
        path = urllib.parse.urlparse(uri).path if scheme == "file" else uri
        return Path(path).exists()
    return True


def store_uri(offline_dir: str | Path) -> str:
    """The MLflow tracking URI of the local file store in `offline_dir`."""
    return (Path(offline_dir).resolve() / STORE_DIR).as_uri()


def _q(value: object) -> str:
    """A YAML scalar: null, an int, or a single-quoted string."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _write_yaml(path: Path, data: dict) -> None:
    path.write_text("".join(f"{k}: {_q(v) if v != [] else '[]'}\n" for k, v in data.items()))


def start(offline_dir: str | Path, real_run_id: str, tracking_uri: str | None) -> tuple[str, str]:
    """Create the local store and its run; write bundle.json. Returns (local tracking URI, local run id)."""
    d = Path(offline_dir).resolve()
    exp_dir = d / STORE_DIR / OFFLINE_EXPERIMENT_ID
    now = int(time.time() * 1000)
    if (d / BUNDLE_FILE).is_file():  # a requeued job: keep logging into the same local run
        meta = read_bundle(d)
        run_dir = exp_dir / meta["offline_run_id"]
        if meta.get("run_id") == real_run_id and (run_dir / "meta.yaml").is_file():
            # where this attempt's points begin, per metric: a step an earlier attempt logged is kept once
            starts = list(meta.get("attempt_starts") or [])
            starts.append(metric_sizes(run_dir / "metrics"))
            meta.update(status=None, reason=None, end_time=None, attempt_starts=starts)
            write_bundle(d, meta)
            return store_uri(d), meta["offline_run_id"]
    run_id = uuid.uuid4().hex
    run_dir = exp_dir / run_id
    for sub in ("metrics", "params", "tags", "artifacts"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    if not (exp_dir / "meta.yaml").is_file():
        _write_yaml(exp_dir / "meta.yaml", {
            "artifact_location": exp_dir.as_uri(), "creation_time": now, "experiment_id": OFFLINE_EXPERIMENT_ID,
            "last_update_time": now, "lifecycle_stage": "active", "name": "Default"})
    _write_yaml(run_dir / "meta.yaml", {
        "artifact_uri": (run_dir / "artifacts").as_uri(), "end_time": None, "entry_point_name": "",
        "experiment_id": OFFLINE_EXPERIMENT_ID, "lifecycle_stage": "active", "run_id": run_id,
        "run_name": "local", "source_name": "", "source_type": 4, "source_version": "", "start_time": now,
        "status": 1, "tags": [], "user_id": os.environ.get("USER", "unknown")})
    write_bundle(d, {"run_id": real_run_id, "offline_run_id": run_id, "experiment_id": OFFLINE_EXPERIMENT_ID,
                     "tracking_uri": tracking_uri, "status": None, "reason": None, "start_time": now,
                     "end_time": None})
    return store_uri(d), run_id


def metric_sizes(metrics_dir: Path) -> dict[str, int]:
    """{metric key: bytes of its file} of a local run's `metrics/` (complete lines only)."""
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(metrics_dir):
        for name in files:
            p = Path(dirpath) / name
            data = p.read_bytes()
            out[p.relative_to(metrics_dir).as_posix()] = data.rfind(b"\n") + 1
    return out


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
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, d / BUNDLE_FILE)


def finish(offline_dir: str | Path, status: str, reason: str | None, end_time: int, **extra) -> None:
    """Record the run's final status (and e.g. `mirrored`) in bundle.json."""
    data = read_bundle(offline_dir)
    data.update(status=status, reason=reason, end_time=end_time, **extra)
    write_bundle(offline_dir, data)
