"""Helpers: running the example entry points for real: `mlflow run . -e E -P ... --backend repro-local`, then waiting."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"FINISHED", "FAILED", "KILLED"}

# Small sizes that keep a run to seconds here; each still learns (tests/examples/test_runs.py).
SMALL = {
    "mnist_convnet": {"data": "bundled", "epochs": 2},
    "imdb_bilstm": {"data": "bundled", "n_train": 1024, "n_test": 512, "maxlen": 32},
    "imbalanced_classification": {"data": "bundled", "rows": 20000, "epochs": 10},
}


def submit(env: dict, entry_point: str, **params) -> str:
    """Start one run through the real CLI and the repro-local backend; return its run id."""
    cmd = ["mlflow", "run", str(ROOT), "-e", entry_point, "--backend", "repro-local"]
    for k, v in params.items():
        cmd += ["-P", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    m = re.search(r"repro: run ([0-9a-f]{32}) submitted", out.stderr)
    assert out.returncode == 0 and m, f"mlflow run failed ({out.returncode}):\n{out.stderr[-3000:]}"
    return m.group(1)


def wait(run_ids: list[str], timeout_s: float = 600) -> dict:
    """Block until every run is terminal; return {run_id: Run}."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    deadline = time.monotonic() + timeout_s
    runs: dict = {}
    while time.monotonic() < deadline:
        runs = {rid: client.get_run(rid) for rid in run_ids}
        if all(r.info.status in TERMINAL for r in runs.values()):
            return runs
        time.sleep(0.5)
    pytest.fail(f"runs not terminal after {timeout_s} s: {[(k, r.info.status) for k, r in runs.items()]}")


def run_log(run) -> str:
    """The tail of a run's output log (for failure messages)."""
    workdir, tags = run.data.tags.get("repro.workdir"), run.data.tags
    idx = tags.get("repro.array_index", "0")
    path = Path(workdir or ".") / idx / "output.log"
    return path.read_text()[-3000:] if path.is_file() else "(no log)"


def finished(run) -> None:
    assert run.info.status == "FINISHED", f"run {run.info.run_id} {run.info.status}:\n{run_log(run)}"


def digests(run) -> dict[str, str]:
    return {k: v for k, v in run.data.tags.items() if k.startswith("repro.digest.")}
