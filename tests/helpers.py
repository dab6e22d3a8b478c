"""Small helpers for tests: wait for runs to end, read runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

TERMINAL = {"FINISHED", "FAILED", "KILLED"}


def wait_terminal(run_ids: list[str], timeout: float = 300, client: MlflowClient | None = None,
                  between: Callable[[list[Run]], object] | None = None) -> list[Run]:
    """Poll the store until every run is terminal; fail the test on timeout. `between(runs)` runs
    between two polls (e.g. `repro sync`'s sync_runs) instead of a half-second sleep."""
    client = client or MlflowClient()
    deadline = time.monotonic() + timeout
    while True:
        runs = [client.get_run(r) for r in run_ids]
        if all(r.info.status in TERMINAL for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"runs not terminal after {timeout}s: {[(r.info.run_id, r.info.status) for r in runs]}")
        between(runs) if between else time.sleep(0.5)


def all_runs(client: MlflowClient | None = None) -> list[Run]:
    """Every run in every experiment of the current store (deleted ones excluded)."""
    client = client or MlflowClient()
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(exp_ids, max_results=10000)) if exp_ids else []


def run_offline_worker(tracking_uri: str, run_id: str, offline_dir: Path, script: Path, repro_home: Path,
                       ) -> subprocess.CompletedProcess:
    """The one-command worker form for `run_id` with the tracking server away: `script` logs to the local
    store in `offline_dir` (no grace wait at the end); stdout and stderr captured as text."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, REPRO_OFFLINE_DIR=str(offline_dir),
               REPRO_MIRROR_GRACE="0", REPRO_HOME=str(repro_home))
    return subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--",
                           sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
