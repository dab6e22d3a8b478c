"""repro-local through MLflow's Python API and the batch API: repeatability, failures, cancel."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.schedulers.local import LocalConfig, LocalScheduler
from repro_mlflow.submit.project import make_spec
from tests.conftest import ROOT
from tests.helpers import all_runs, wait_terminal

TOY_MLPROJECT = textwrap.dedent("""
    name: toy
    entry_points:
      ok:
        parameters: {value: {type: float, default: 1.0}}
        command: "python -c 'import mlflow; mlflow.start_run(); mlflow.log_metric(\\"value\\", {value})'"
      fail:
        command: "python -c 'import sys; print(\\"boom\\"); sys.exit(3)'"
      raises:
        command: "python -c 'print(\\"loading\\"); raise ValueError(\\"epochs must be positive\\")'"
      sleep:
        command: "python -c 'import time; time.sleep(120)'"
""")


@pytest.fixture
def toy_project(tmp_path) -> Path:
    d = tmp_path / "toy"
    d.mkdir()
    (d / "MLproject").write_text(TOY_MLPROJECT)
    return d


def test_same_config_repeats_bitwise_and_seed_changes_weights(tracking):
    specs = [make_spec(ROOT, "mnist_convnet", {"epochs": "1", "data": "bundled", "seed": s, "threads": "1"})
             for s in ("1", "1", "2")]
    exp = mlflow.set_experiment("repeat").experiment_id
    ids = submit_batch(MlflowClient(), LocalScheduler(LocalConfig(parallel=2)), specs, ROOT, exp, tracking)
    runs = wait_terminal(ids, timeout=300)
    assert [r.info.status for r in runs] == ["FINISHED"] * 3
    digests = [r.data.tags["repro.digest.weights"] for r in runs]
    assert digests[0] == digests[1], "same seed, same threads, op determinism on: must be bit-identical here"
    assert digests[2] != digests[0]
    assert runs[0].data.tags["repro.digest.predictions"] == runs[1].data.tags["repro.digest.predictions"]
    # the batch went out as one submission: one batch directory, indexes 0..2
    assert len({r.data.tags["repro.workdir"] for r in runs}) == 1
    assert sorted(r.data.tags["repro.array_index"] for r in runs) == ["0", "1", "2"]


def test_entry_point_failure_ends_failed_with_reason(tracking, toy_project):
    sub = mlflow.projects.run(str(toy_project), "fail", backend="repro-local", synchronous=False)
    assert sub.wait() is False
    run = MlflowClient().get_run(sub.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["repro.status_reason"] == "exit code 3: boom"


def test_failing_entry_point_reason_carries_its_exception(tracking, toy_project):
    sub = mlflow.projects.run(str(toy_project), "raises", backend="repro-local", synchronous=False)
    assert sub.wait() is False
    reason = MlflowClient().get_run(sub.run_id).data.tags["repro.status_reason"]
    assert reason == "exit code 1: ValueError: epochs must be positive"


def test_cancel_kills_the_process_tree_and_marks_killed(tracking, toy_project):
    sub = mlflow.projects.run(str(toy_project), "sleep", backend="repro-local", synchronous=False)
    client = MlflowClient()
    deadline = time.monotonic() + 60
    while client.get_run(sub.run_id).info.status != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    job = client.get_run(sub.run_id).data.tags["repro.job_id"]
    workdir, idx = Path(job.split(":", 1)[1].rsplit(":", 1)[0]), job.rsplit(":", 1)[1]
    deadline = time.monotonic() + 30
    while not (workdir / f"{idx}.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int((workdir / f"{idx}.pid").read_text().split()[0])
    sub.cancel()
    [run] = wait_terminal([sub.run_id], timeout=30)
    assert run.info.status == "KILLED"
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stat = Path(f"/proc/{pid}/stat").read_text().split() if Path(f"/proc/{pid}").exists() else None
    assert stat is None or stat[2] == "Z", "the runtime process is still alive after cancel"


def test_synchronous_python_api_waits_and_succeeds(tracking, toy_project):
    sub = mlflow.projects.run(str(toy_project), "ok", parameters={"value": 2.5}, backend="repro-local")
    run = MlflowClient().get_run(sub.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["value"] == 2.5
    assert run.data.params["value"] == "2.5"


def test_vanished_process_is_ended_by_sync(tracking, toy_project):
    import os
    import signal

    from repro_mlflow.submit.sync import sync_runs, unfinished_runs

    sub = mlflow.projects.run(str(toy_project), "sleep", backend="repro-local", synchronous=False)
    client = MlflowClient()
    job = client.get_run(sub.run_id).data.tags["repro.job_id"]
    workdir, idx = Path(job.split(":", 1)[1].rsplit(":", 1)[0]), job.rsplit(":", 1)[1]
    deadline = time.monotonic() + 30
    while not (workdir / f"{idx}.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    # SIGKILL the driver and the runtime: nobody is left to end the run
    for name in ("driver.pid", f"{idx}.pid"):
        pid = int((workdir / name).read_text().split()[0])
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    assert client.get_run(sub.run_id).info.status in ("RUNNING", "SCHEDULED")
    report = sync_runs(client, unfinished_runs(client, [e.experiment_id for e in client.search_experiments()]))
    run = client.get_run(sub.run_id)
    assert run.info.status == "FAILED", report
    assert run.data.tags["repro.status_reason"]


def test_no_test_left_a_run_running(tracking):
    assert [r for r in all_runs() if r.info.status == "RUNNING"] == []
