"""Faults on repro-local, on real processes: nothing lost, nothing false (issue 28 item 1).

A finished run whose local store is gone is ended FAILED by `repro sync`, never FINISHED with nothing;
a `kill -9` of the runtime takes its entry point with it, and sync then delivers every step it logged,
its output.log, and the real end time."""

from __future__ import annotations

import os
import shutil
import signal
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers.local import LocalConfig, LocalScheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from repro_mlflow.submit.sync import sync_runs, unfinished_runs

MLPROJECT = textwrap.dedent("""
    name: faults
    entry_points:
      once:
        command: "python -c 'import mlflow; mlflow.start_run(); mlflow.log_metric(\\"value\\", 7)'"
      steps:
        command: "python steps.py"
""")

# logs one step, then says so, until killed; its pid where the test can see it
STEPS = textwrap.dedent("""
    import os, sys, time
    import mlflow
    open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
    mlflow.start_run()
    for i in range(100000):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        print(f"step {i}", flush=True)
        time.sleep(0.02)
""")


@pytest.fixture
def project(tmp_path) -> Path:
    d = tmp_path / "faults"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    (d / "steps.py").write_text(STEPS)
    return d


def _submit(tracking, project, entry, n=1, env=None):
    exp = mlflow.set_experiment("faults").experiment_id
    specs = [make_spec(project, entry, {}) for _ in range(n)]
    ids = submit_batch(MlflowClient(), LocalScheduler(LocalConfig(parallel=n, env=env)), specs, project, exp, tracking)
    job = MlflowClient().get_run(ids[0]).data.tags["repro.job_id"]
    return ids, Path(job.split(":", 1)[1].rsplit(":", 1)[0])


def _wait(check, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"no {what} after {timeout} s"
        time.sleep(0.1)


def _sync(client):
    return sync_runs(client, unfinished_runs(client, [e.experiment_id for e in client.search_experiments()]))


def test_a_finished_run_whose_local_store_is_gone_ends_failed_never_finished(tracking, project):
    # offline: the runs finish locally and deliver nothing (as with the tracking server away)
    ids, workdir = _submit(tracking, project, "once", n=2, env={"REPRO_OFFLINE": "1"})
    _wait(lambda: all((workdir / f"{i}.rc").exists() for i in (0, 1)), what="exit codes")
    assert [(workdir / f"{i}.rc").read_text() for i in (0, 1)] == ["0", "0"]
    client = MlflowClient()
    assert [client.get_run(r).info.status for r in ids] != ["FINISHED", "FINISHED"]  # not delivered yet
    shutil.rmtree(workdir / "1" / "offline")  # a scratch purge of one run's local store
    report = _sync(client)
    gone = client.get_run(ids[1])
    assert gone.info.status == "FAILED", report
    assert gone.data.tags["repro.status_reason"] == f"local results lost: {workdir / '1' / 'offline'} missing"
    assert gone.data.metrics == {}
    kept = client.get_run(ids[0])  # the other run of the batch: delivered, and FINISHED
    assert kept.info.status == "FINISHED" and kept.data.metrics == {"value": 7.0}
    # the whole batch directory gone (its record with it): nothing to poll, so the run is left as it is, and said
    shutil.rmtree(workdir)
    run = client.get_run(ids[0])
    report = sync_runs(client, [run])
    assert client.get_run(ids[0]).info.status == "FINISHED" and report.ended == {}


@pytest.mark.parametrize("killed", ["runtime", "runtime and driver"])
def test_kill_9_of_the_runtime_takes_the_entry_point_and_sync_delivers_all_it_logged(tracking, project, tmp_path,
                                                                                     killed):
    pid_file = tmp_path / "entry.pid"
    ids, workdir = _submit(tracking, project, "steps", env={"PID_FILE": str(pid_file)})
    log = workdir / "0" / "output.log"
    _wait(lambda: log.exists() and log.read_text().count("step ") >= 5, what="5 steps")
    entry = int(pid_file.read_text())
    victims = ["0.pid"] + (["driver.pid"] if killed == "runtime and driver" else [])
    for name in victims:  # the processes only, not their groups: the entry point is left to the runtime's fate
        os.kill(int((workdir / name).read_text().split()[0]), signal.SIGKILL)
    killed_ms = int(time.time() * 1000)
    _wait(lambda: not _running(entry), timeout=10, what="end of the entry point")  # no orphan logging on
    last = max(int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("step "))
    client = MlflowClient()
    if killed == "runtime":  # the driver writes the exit code once the whole group is gone
        _wait(lambda: (workdir / "0.rc").exists(), timeout=10, what="exit code")
    time.sleep(1.5)
    synced_ms = int(time.time() * 1000)
    report = _sync(client)
    run = client.get_run(ids[0])
    assert run.info.status == "FAILED", report
    reason = run.data.tags["repro.status_reason"]
    assert ("SIGKILL" in reason) if killed == "runtime" else ("gone" in reason), reason
    steps = [m.step for m in client.get_metric_history(ids[0], "loss")]
    assert sorted(steps) == list(range(len(steps))), "each step exactly once"
    assert len(steps) >= last + 1  # every step it said it logged (at most the one logged before it said so)
    artifacts = [a.path for a in client.list_artifacts(ids[0], "repro")]
    assert "repro/output.log" in artifacts
    assert f"step {last}" in Path(client.download_artifacts(ids[0], "repro/output.log", str(tmp_path))).read_text()
    # the real end: the last local write, before the kill; not the time of the sync
    assert killed_ms - 5000 <= run.info.end_time <= killed_ms + 500 < synced_ms, (killed_ms, run.info.end_time, synced_ms)
    assert _sync(client).ended == {}  # a second sync changes nothing


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
