"""A requeue is not a kill: `scontrol requeue` on a real one-node Slurm, with requeue on and off."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers.slurm import SlurmConfig, SlurmScheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from repro_mlflow.submit.sync import sync_runs

TERMINAL = ("FINISHED", "FAILED", "KILLED")
STEPS = 14

MLPROJECT = """\
name: steps
entry_points:
  main:
    parameters:
      n: {type: int, default: 14}
      gate: {type: string}
    command: >-
      python -c "import mlflow, os, time;
      mlflow.start_run();
      [(mlflow.log_metric('loss', 1.0 / (s + 1), step=s), s == 5 and [time.sleep(0.2) for _ in range(300)
      if not os.path.exists('{gate}')], time.sleep(0.1)) for s in range({n})];
      mlflow.end_run()"
"""
# Step 5 waits (up to a minute) until the file `gate` exists: the test stops the job there, mid-run.


@pytest.fixture
def project(tmp_path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    return d


def _wait(cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def _submit_running(project: Path, tracking: str, requeue: bool, gate: Path) -> tuple[MlflowClient, str, str]:
    """Submit one run; return once the real run has its points 0..5 (the job waits at step 5 for `gate`)."""
    client = MlflowClient(tracking)
    exp = client.create_experiment(f"requeue-{requeue}")
    sched = SlurmScheduler(SlurmConfig(requeue=requeue, time="10"))
    spec = make_spec(project, "main", {"n": STEPS, "gate": str(gate)})
    [rid] = submit_batch(client, sched, [spec], project, exp, tracking)
    _wait(lambda: len(client.get_metric_history(rid, "loss")) >= 6, 120, "points 0..5 mirrored")
    return client, rid, client.get_run(rid).data.tags["repro.job_id"]


def _sync_until_terminal(client: MlflowClient, rid: str, timeout: float) -> str:
    def ended():
        run = client.get_run(rid)
        if run.info.status in TERMINAL:
            return run.info.status
        sync_runs(client, [run])  # as `repro sync` does: the scheduler rebuilt from the batch record
        return None
    return _wait(ended, timeout, "the run ended")


def test_requeued_run_finishes_on_attempt_2_with_every_step_once(slurm_cluster, project, tracking, tmp_path):
    gate = tmp_path / "gate"
    client, rid, job = _submit_running(project, tracking, requeue=True, gate=gate)
    slurm_cluster.run("scontrol", "requeue", job)
    gate.touch()  # attempt 2 runs straight through
    # the runtime took the SIGTERM for what it is: the run waits for its next attempt, never KILLED
    _wait(lambda: client.get_run(rid).data.tags.get("repro.attempt") == "2", 30, "attempt 2 recorded")
    run = client.get_run(rid)
    assert run.info.status == "SCHEDULED", run.data.tags.get("repro.status_reason")
    assert "repro.status_reason" not in run.data.tags
    # Slurm holds a requeued job back (BeginTime) for a while; once it is pending, let it start now
    _wait(lambda: slurm_cluster.run("squeue", "-h", "-j", job, "-O", "State", check=False).stdout.strip() == "PENDING",
          60, "the job pending again")
    slurm_cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now")
    status = _sync_until_terminal(client, rid, 180)
    run = client.get_run(rid)
    assert status == "FINISHED", run.data.tags.get("repro.status_reason")
    assert run.data.tags["repro.attempt"] == "2"
    assert run.data.tags["repro.slurm.restart_count"] == "1"  # the tags of the attempt that finished
    history = sorted((m.step, m.value) for m in client.get_metric_history(rid, "loss"))
    assert history == [(s, 1.0 / (s + 1)) for s in range(STEPS)]  # every step exactly once


def test_requeue_off_sigterm_ends_failed_or_killed_with_reason(slurm_cluster, project, tracking, tmp_path):
    client, rid, job = _submit_running(project, tracking, requeue=False, gate=tmp_path / "never")
    refused = slurm_cluster.run("scontrol", "requeue", job, check=False)
    assert refused.returncode != 0 and "disabled" in refused.stderr  # --no-requeue: Slurm will not requeue it
    # what a preemption with requeue off sends: SIGTERM to every process of the job
    slurm_cluster.run("scancel", "--full", "--signal=TERM", job)
    status = _sync_until_terminal(client, rid, 120)
    run = client.get_run(rid)
    # KILLED when the runtime saw the signal first, FAILED when its command died of it first
    reason = run.data.tags["repro.status_reason"]
    assert (status, reason.split(":")[0]) in {("KILLED", "stopped by signal SIGTERM"), ("FAILED", "killed by signal SIGTERM")}
    assert run.data.tags["repro.attempt"] == "1"
    steps = [m.step for m in client.get_metric_history(rid, "loss")]
    assert len(steps) == len(set(steps)) >= 3 and len(steps) < STEPS
