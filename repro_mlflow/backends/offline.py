"""Offline results, submit side: replay an offline bundle into its real run, exactly once.

A bundle is the directory a worker filled when it could not reach the tracking store
(`runtime/offline.py`): an MLflow file store `mlruns/` with one run, and `bundle.json` naming the
real run, the final status and its reason. `replay_bundle` copies into the real run:

- params that the real run does not have yet;
- metrics, each `(value, step, timestamp)` that is not already in the real run's history
  (so a replay interrupted half-way and run again completes it without duplicates);
- tags, except MLflow's own `mlflow.*` system tags of the offline run (run name, user, source:
  the real run has its own);
- artifacts (the fingerprint, the output log, whatever the command logged);
- the terminal status and `repro.status_reason`, if the real run is not terminal yet.

It then sets `repro.replayed` to the bundle's digest; a bundle whose digest is already there is
skipped, so a second replay adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from .. import tags as T
from ..runtime import offline as worker_offline
from .protocol import TERMINAL

_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS = 1000, 100, 100


def bundle_digest(bundle: Path) -> str:
    """A short digest of the bundle's content (bundle.json and every file of its store)."""
    h = hashlib.sha256()
    root = Path(bundle)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.endswith(".tmp"):
            continue
        st = path.stat()
        h.update(f"{rel}\0{st.st_size}\0".encode())
        if rel == worker_offline.BUNDLE_FILE:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def offline_client(bundle: Path) -> MlflowClient:
    """A client on the bundle's file store."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(worker_offline.store_uri(bundle))


def replay_bundle(client: MlflowClient, run_id: str, bundle: Path) -> bool:
    """Replay `bundle` into `run_id`; True if anything was added. Idempotent."""
    bundle = Path(bundle)
    try:
        meta = worker_offline.read_bundle(bundle)
    except (OSError, ValueError):
        return False
    if meta.get("run_id") != run_id:
        raise ValueError(f"offline bundle {bundle} belongs to run {meta.get('run_id')}, not {run_id}")
    digest = bundle_digest(bundle)
    real = client.get_run(run_id)
    if real.data.tags.get(T.REPLAYED) == digest:
        return False
    off = offline_client(bundle)
    src = off.get_run(meta["offline_run_id"])

    params = [Param(k, v) for k, v in src.data.params.items() if k not in real.data.params]
    tags = [RunTag(k, v) for k, v in src.data.tags.items()
            if not k.startswith("mlflow.") and real.data.tags.get(k) != v]
    metrics: list[Metric] = []
    for key in src.data.metrics:
        have: dict[tuple, int] = {}
        for m in client.get_metric_history(run_id, key):
            have[(m.value, m.step, m.timestamp)] = have.get((m.value, m.step, m.timestamp), 0) + 1
        for m in off.get_metric_history(src.info.run_id, key):
            k = (m.value, m.step, m.timestamp)
            if have.get(k):
                have[k] -= 1
            else:
                metrics.append(Metric(key, m.value, m.timestamp, m.step))
    for i in range(0, len(params), _BATCH_PARAMS):
        client.log_batch(run_id, params=params[i:i + _BATCH_PARAMS])
    for i in range(0, len(metrics), _BATCH_METRICS):
        client.log_batch(run_id, metrics=metrics[i:i + _BATCH_METRICS])
    for i in range(0, len(tags), _BATCH_TAGS):
        client.log_batch(run_id, tags=tags[i:i + _BATCH_TAGS])

    # The store records absolute artifact paths of the worker; a bundle moved back to the submit
    # side (HTCondor output transfer, S3) has them under its own mlruns/ instead.
    artifacts = bundle / worker_offline.STORE_DIR / str(src.info.experiment_id) / src.info.run_id / "artifacts"
    if not artifacts.is_dir():
        artifacts = _artifact_dir(src.info.artifact_uri)
    copied = False
    if artifacts is not None and artifacts.is_dir() and any(artifacts.iterdir()):
        client.log_artifacts(run_id, str(artifacts))
        copied = True

    client.set_tag(run_id, T.OFFLINE, "1")
    client.set_tag(run_id, T.REPLAYED, digest)
    status = meta.get("status")
    if status in TERMINAL and client.get_run(run_id).info.status not in TERMINAL:
        if meta.get("reason"):
            client.set_tag(run_id, T.STATUS_REASON, T.short(meta["reason"]))
        client.set_terminated(run_id, status, end_time=meta.get("end_time"))
    return bool(params or metrics or tags or copied or status in TERMINAL)


def _artifact_dir(uri: str) -> Path | None:
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme in ("file", ""):
        return Path(parsed.path)
    return None


def describe(bundle: Path) -> dict:
    """bundle.json of a bundle (for `repro` messages)."""
    return json.loads((Path(bundle) / worker_offline.BUNDLE_FILE).read_text())
