"""Local stores, submit side: replay what a worker's mirror could not deliver into its real run, exactly once.

A bundle is the run's local store as the job left it (`runtime/offline.py`): MLflow's SQLite store
`store.db` with one run and its `artifacts/` (or, made before 2026-12, an MLflow file store `mlruns/`,
still replayed), and `bundle.json` naming the real run, the final status and its reason.
`replay_bundle` runs the worker's own replay (`runtime/replay.py:Replayer`, one code path) over it:
params the real run lacks, tags that differ, each metric point the real history lacks (matched as
a multiset of (value, step, timestamp), so a replay interrupted half-way and run again completes
it without duplicates), artifacts new or of another size, then the terminal status and
`repro.status_reason` if the real run is not terminal yet.

It holds the bundle's lock while it works (two `repro sync` at once: the second waits, then finds
the work done), and sets `repro.replayed` to the bundle's digest; a bundle whose digest is already
there is skipped. `repro.offline=1` says that part of the run came through `repro sync`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from .. import tags as T
from ..runtime import offline as worker_offline
from ..runtime.mirror import bundle_lock
from ..runtime.replay import Replayer
from ..schedulers.protocol import TERMINAL

_SKIP = (".tmp", worker_offline.LOCK_FILE, "-journal", "-wal", "-shm")


def bundle_digest(bundle: Path) -> str:
    """A short digest of the bundle's content (bundle.json and every file of its store)."""
    h = hashlib.sha256()
    root = Path(bundle)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.endswith(_SKIP):
            continue
        st = path.stat()
        h.update(f"{rel}\0{st.st_size}\0".encode())
        if rel == worker_offline.BUNDLE_FILE:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def offline_client(bundle: Path) -> MlflowClient:
    """A client on the bundle's local store (its SQLite database, where the bundle lies now)."""
    if worker_offline.is_legacy(bundle):
        raise ValueError(f"{bundle} is a local store of the previous layout (mlruns/): `repro sync` replays it, "
                         "no MLflow client reads it")
    return MlflowClient(worker_offline.store_uri(bundle))


def replay_bundle(client: MlflowClient, run_id: str, bundle: Path) -> bool:
    """Replay `bundle` into `run_id`; True if anything was added or the run was ended. Idempotent."""
    bundle = Path(bundle)
    try:
        meta = worker_offline.read_bundle(bundle)
    except (OSError, ValueError):
        return False
    if meta.get("run_id") != run_id:
        raise ValueError(f"offline bundle {bundle} belongs to run {meta.get('run_id')}, not {run_id}")
    with bundle_lock(bundle):
        digest = bundle_digest(bundle)
        real = client.get_run(run_id)
        if real.data.tags.get(T.REPLAYED) == digest:
            return False
        replayer = Replayer(client, run_id, bundle)
        replayer.step(final=True)
        if replayer.added:
            client.set_tag(run_id, T.OFFLINE, "1")
        client.set_tag(run_id, T.REPLAYED, digest)
        ended = meta.get("status") in TERMINAL and replayer.end(meta["status"], meta.get("reason"), meta.get("end_time"))
    return replayer.added or ended


def has_store(bundle: Path | None) -> bool:
    """Whether `bundle` holds a local store that can be replayed (bundle.json and its database or `mlruns/`)."""
    if bundle is None:
        return False
    b = Path(bundle)
    return (b / worker_offline.BUNDLE_FILE).is_file() and (
        (b / worker_offline.DB_FILE).is_file() or (b / worker_offline.STORE_DIR).is_dir())


def last_write_ms(*paths: Path | None) -> int | None:
    """The last time anything was written under these files and folders (ms): when a runtime that was
    killed last logged, its output and its local store included."""
    times = []
    for p in paths:
        if p is None or not Path(p).exists():
            continue
        files = [Path(p)] if Path(p).is_file() else [f for f in Path(p).rglob("*") if f.is_file()]
        times += [f.stat().st_mtime for f in files if not f.name.endswith(_SKIP)]
    return int(max(times) * 1000) if times else None


def close_unfinished(bundle: Path, status: str, reason: str | None, log_file: Path | None) -> bool:
    """End a local store its runtime never ended (the runtime was killed) as the runtime would have: the
    command's output as `repro/output.log`, the status, and as end time the last local write, not now.
    False (nothing changed) when the store was ended already."""
    meta = worker_offline.read_bundle(bundle)
    if meta.get("status") is not None:
        return False
    end_time = last_write_ms(bundle, log_file) or int(meta.get("start_time") or 0)
    if log_file is not None and Path(log_file).is_file() and not worker_offline.is_legacy(bundle):
        from ..runtime.replay import open_local  # noqa: PLC0415

        with bundle_lock(bundle):
            open_local(bundle).add_file(log_file, T.LOG_ARTIFACT)
    worker_offline.finish(bundle, status, reason, end_time, closed_by="repro sync")
    return True


def describe(bundle: Path) -> dict:
    """bundle.json of a bundle (for `repro` messages)."""
    return json.loads((Path(bundle) / worker_offline.BUNDLE_FILE).read_text())
