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


def describe(bundle: Path) -> dict:
    """bundle.json of a bundle (for `repro` messages)."""
    return json.loads((Path(bundle) / worker_offline.BUNDLE_FILE).read_text())
