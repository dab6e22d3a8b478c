"""repro-slurm against a real one-node Slurm cluster (munge + slurmctld + slurmd on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from repro_mlflow.schedulers.slurm import SlurmConfig, SlurmScheduler
from repro_mlflow.submit.sync import sync_runs, unfinished_runs

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = ("FINISHED", "FAILED", "KILLED")

MLPROJECT = """\
name: tiny
entry_points:
  main:
    parameters:
      x: {type: int, default: 0}
    command: "python -c \\"import sys; sys.exit(1 if {x} % 7 == 3 else 0)\\""
  sleep:
    parameters:
      seconds: {type: int, default: 300}
    command: "sleep {seconds}"
  fail:
    command: "python -c \\"import sys; print('about to fail'); sys.exit(1)\\""
  log:
    parameters:
      x: {type: int, default: 0}
    command: >-
      python -c "import mlflow;
      r = mlflow.start_run();
      mlflow.log_param('double', 2 * {x});
      mlflow.set_tag('user.parity', 'odd' if {x} % 2 else 'even');
      [mlflow.log_metric('loss', 1.0 / (s + {x} + 1), step=s) for s in range(4)];
      mlflow.log_metric('final', {x} * 10);
      mlflow.log_text('x={x}', 'out/x.txt');
      mlflow.end_run()"
"""


@pytest.fixture
def project(tmp_path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    return d


@pytest.fixture
def exp(tracking) -> str:
    return MlflowClient().create_experiment("slurm-test")


def _submit(project: Path, entry: str, params: list[dict], exp: str, uri: str, **cfg) -> tuple[SlurmScheduler, list[str]]:
    sched = SlurmScheduler(SlurmConfig(**cfg))
    specs = [make_spec(project, entry, p) for p in params]
    return sched, submit_batch(MlflowClient(uri), sched, specs, project, exp, uri)


def _sync_until(client: MlflowClient, run_ids: list[str], timeout: float, interval: float = 3.0) -> dict[str, str]:
    """Reconcile (as `repro sync` does) until every run is terminal; return run id -> status."""
    end = time.monotonic() + timeout
    while True:
        runs = [client.get_run(r) for r in run_ids]
        if all(r.info.status in TERMINAL for r in runs) or time.monotonic() > end:
            return {r.info.run_id: r.info.status for r in runs}
        sync_runs(client, runs)
        time.sleep(interval)


def _wait_job(sched: SlurmScheduler, job_id: str, states: tuple[str, ...], timeout: float) -> str | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = sched.poll([job_id])[job_id].state
        if st in states:
            return st
        time.sleep(1)
    return None


# ---- bad input: one line, non-zero exit, no run ---------------------------------------------------
@pytest.mark.parametrize("case", ["partition", "time", "no_sbatch"])
def test_bad_input_one_line_error_and_no_run(case, slurm_cluster, project, tracking, cli_env, tmp_path):
    cfg = {"partition": "nope"} if case == "partition" else {"time": "2h"} if case == "time" else {}
    env = dict(cli_env)
    if case == "no_sbatch":
        env["PATH"] = str(BIN)  # the venv's tools only: no Slurm commands
    (tmp_path / "slurm.json").write_text(json.dumps(cfg))
    p = subprocess.run([str(BIN / "mlflow"), "run", str(project), "-e", "main", "--experiment-name", "bad",
                        "--backend", "repro-slurm", "--backend-config", str(tmp_path / "slurm.json")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    expected = {"partition": "unknown Slurm partition 'nope' (known: debug)",
                "time": "time '2h' is not a Slurm time limit",
                "no_sbatch": "sbatch not found on PATH"}[case]
    lines = [ln for ln in p.stderr.splitlines() if expected in ln]
    assert len(lines) == 1, p.stderr
    client = MlflowClient()
    exp = client.get_experiment_by_name("bad")
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL) if exp else []
    assert runs == []


# ---- the real CLI with the real example --------------------------------------------------------
@pytest.mark.slow
def test_mlflow_run_mnist_under_slurm(slurm_cluster, tracking, cli_env, tmp_path):
    cfg = tmp_path / "slurm.json"
    cfg.write_text(json.dumps({"partition": slurm_cluster.partition, "time": "00:30:00", "cpus_per_task": 1,
                               "env": {"TF_CPP_MIN_LOG_LEVEL": "3"}}))
    p = subprocess.run([str(BIN / "mlflow"), "run", ".", "-e", "mnist_convnet", "-P", "epochs=1", "-P", "data=bundled",
                        "--backend", "repro-slurm", "--backend-config", str(cfg)],
                       cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "submitted to slurm (job " in p.stderr
    client = MlflowClient()
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    rid = run.info.run_id
    status = _sync_until(client, [rid], timeout=900, interval=5)[rid]
    # the example's own `mlflow.start_run()` block ends the run FINISHED; wait for the job to end too
    assert _wait_job(SlurmScheduler(), client.get_run(rid).data.tags["repro.job_id"], TERMINAL, 300)
    run = client.get_run(rid)
    log = SlurmScheduler().log_path(run.data.tags["repro.job_id"], Path(run.data.tags["repro.workdir"]))
    assert status == "FINISHED", log.read_text()[-3000:] if log.exists() else run.data.tags
    tags = run.data.tags
    assert tags["repro.backend"] == "slurm"
    assert tags["repro.slurm.array_id"] == tags["repro.job_id"]
    assert tags["repro.slurm.job_id"].isdigit()
    assert tags["repro.slurm.partition"] == slurm_cluster.partition
    assert tags["repro.slurm.node"] == slurm_cluster.node
    assert tags["repro.slurm.cluster"] == "repro-test"
    assert tags["repro.fp.hw"] and tags["repro.fp.sw"] and tags["repro.hw.cpu.model"]
    assert 0.0 < run.data.metrics["test_accuracy"] <= 1.0
    assert {a.path for a in client.list_artifacts(rid, "repro")} >= {"repro/fingerprint.json", "repro/output.log"}


# ---- one array for many runs --------------------------------------------------------------------
def test_twenty_runs_one_sbatch_all_correct(slurm_cluster, project, exp, tracking, tmp_path, monkeypatch, cli_env):
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    calls = tmp_path / "sbatch.calls"
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    (wrapper / "sbatch").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (wrapper / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{os.environ['PATH']}")

    sched, rids = _submit(project, "main", [{"x": i} for i in range(20)], exp, tracking, time="10")
    assert len(calls.read_text().splitlines()) == 1  # one sbatch call for the 20 runs
    assert "--array=0-19" in calls.read_text()
    client = MlflowClient()
    job_ids = [client.get_run(r).data.tags["repro.job_id"] for r in rids]
    arrays = {j.split("_")[0] for j in job_ids}
    assert len(arrays) == 1
    array = arrays.pop()
    assert job_ids == [f"{array}_{i}" for i in range(20)]

    statuses = _sync_until(client, rids, timeout=600)
    for i, rid in enumerate(rids):
        run = client.get_run(rid)
        assert run.data.params["x"] == str(i)
        assert run.data.tags["repro.array_index"] == str(i)
        assert run.data.tags["repro.slurm.array_id"] == run.data.tags["repro.job_id"]
        if i % 7 == 3:
            assert statuses[rid] == "FAILED" and run.data.tags["repro.status_reason"] == "exit code 1"
        else:
            assert statuses[rid] == "FINISHED", (i, run.data.tags.get("repro.status_reason"))
    assert len(calls.read_text().splitlines()) == 1  # watching added no submission
    p = subprocess.run([str(BIN / "repro"), "status"], env=dict(cli_env, COLUMNS="120"), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    row = next(ln for ln in p.stdout.splitlines() if "slurm" in ln)
    assert [c.strip() for c in row.split("│")[1:-1]] == ["slurm", "", "", "17", "3", ""]
    # the three failures share one reason: one grouped line (count, reason, one run to look at)
    assert "20 repro run(s)" in p.stdout and p.stdout.count("exit code 1") == 1
    assert re.search(r"^3 FAILED: exit code 1 \(e\.g\. run [0-9a-f]{32}\)$", p.stdout, re.M), p.stdout


# ---- scancel, exit 1, a node that dies ----------------------------------------------------------
def test_scancel_killed_and_exit_1_failed(slurm_cluster, project, exp, tracking, cli_env):
    sched, [sleeper] = _submit(project, "sleep", [{"seconds": 300}], exp, tracking)
    _, [failing] = _submit(project, "fail", [{}], exp, tracking)
    client = MlflowClient()
    job = client.get_run(sleeper).data.tags["repro.job_id"]
    assert _wait_job(sched, job, ("RUNNING",), 120) == "RUNNING"
    log = sched.log_path(job, Path(client.get_run(sleeper).data.tags["repro.workdir"]))
    deadline = time.time() + 120
    while not (log.parent.parent / "0" / "output.log").is_file() and time.time() < deadline:
        time.sleep(0.2)  # job.sh has started (Slurm's RUNNING comes before its batch script is launched)
    subprocess.run(["scancel", job], check=True, env=slurm_cluster.env)
    statuses = _sync_until(client, [sleeper, failing], timeout=300)
    assert statuses[sleeper] == "KILLED"
    assert statuses[failing] == "FAILED"
    assert client.get_run(failing).data.tags["repro.status_reason"] == "exit code 1: about to fail"  # its last line
    p = subprocess.run([str(BIN / "repro"), "logs", failing], env=cli_env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "about to fail" in p.stdout, p.stderr
    p = subprocess.run([str(BIN / "repro"), "logs", sleeper], env=cli_env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "CANCELLED AT" in p.stdout, p.stdout + p.stderr  # Slurm's own line is in the run's log


def test_slurmd_dies_mid_run_sync_fails_run(slurm_cluster, project, exp, tracking, cli_env):
    sched, [rid] = _submit(project, "sleep", [{"seconds": 600}], exp, tracking)
    client = MlflowClient()
    job = client.get_run(rid).data.tags["repro.job_id"]
    assert _wait_job(sched, job, ("RUNNING",), 120) == "RUNNING"
    end = time.monotonic() + 60
    while client.get_run(rid).info.status != "RUNNING" and time.monotonic() < end:
        time.sleep(1)  # the runtime marks its run RUNNING
    try:
        assert slurm_cluster.crash_node() > 0
        seen = []
        end = time.monotonic() + 180
        while time.monotonic() < end:
            p = subprocess.run([str(BIN / "repro"), "sync"], env=cli_env, capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            status = client.get_run(rid).info.status
            seen.append(status)
            if status in TERMINAL:
                break
            time.sleep(3)
        run = client.get_run(rid)
        assert run.info.status == "FAILED", seen
        assert "NODE_FAIL" in run.data.tags["repro.status_reason"]
        assert set(seen) <= {"RUNNING", "FAILED"}
        assert unfinished_runs(client, [exp]) == []
    finally:
        slurm_cluster.start_slurmd()


def test_job_unknown_to_slurm_ends_failed_vanished(slurm_cluster, exp, tracking, tmp_path):
    """A job id Slurm never heard of: sync ends the run FAILED, never leaves it RUNNING; one whose exit file says 0
    but whose local store is not there is FAILED too, never FINISHED with nothing delivered."""
    client = MlflowClient()
    run = client.create_run(exp, tags={"repro.backend": "slurm", "repro.job_id": "987654_0",
                                       "repro.workdir": str(tmp_path / "gone")})
    client.update_run(run.info.run_id, "RUNNING")
    (tmp_path / "done" / "0").mkdir(parents=True)
    (tmp_path / "done" / "0" / "rc").write_text("0\n")
    run2 = client.create_run(exp, tags={"repro.backend": "slurm", "repro.job_id": "987655_0",
                                        "repro.workdir": str(tmp_path / "done")})
    report = sync_runs(client, unfinished_runs(client, [exp]))
    assert report.ended == {run.info.run_id: "FAILED", run2.info.run_id: "FAILED"}
    for r, d in ((run, "gone"), (run2, "done")):
        reason = client.get_run(r.info.run_id).data.tags["repro.status_reason"]
        assert reason == f"local results lost: {tmp_path / d / '0' / 'offline'} missing"


# ---- tracking server down while jobs run ---------------------------------------------------------
def test_server_down_offline_results_replayed_once(slurm_cluster, project, mlflow_server, tmp_path, monkeypatch, cli_env):
    uri = mlflow_server.uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "repro"))
    client = MlflowClient(uri)
    exp = client.create_experiment("offline")
    sched, rids = _submit(project, "log", [{"x": i} for i in range(5)], exp, uri, extra_args=["--hold"],
                          env={"REPRO_MIRROR_GRACE": "1"})
    array = client.get_run(rids[0]).data.tags["repro.job_id"].split("_")[0]
    mlflow_server.stop()
    slurm_cluster.run("scontrol", "release", array)
    job_ids = [f"{array}_{i}" for i in range(5)]
    end = time.monotonic() + 400
    while time.monotonic() < end:
        states = sched.poll(job_ids)
        if all(s.state in TERMINAL for s in states.values()):
            break
        time.sleep(2)
    assert {s.state for s in sched.poll(job_ids).values()} == {"FINISHED"}
    mlflow_server.restart()
    assert {client.get_run(r).info.status for r in rids} == {"SCHEDULED"}  # nothing reached the server

    env = dict(cli_env, MLFLOW_TRACKING_URI=uri)
    # two `repro sync` at once: each bundle is replayed by one of them, exactly once
    syncs = [subprocess.Popen([str(BIN / "repro"), "sync"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in syncs]
    assert [p.returncode for p in syncs] == [0, 0], outs
    assert sum(int(o.split("replayed ")[1].split()[0]) for o, _ in outs) == 5, outs
    from repro_mlflow.submit.offline import offline_client
    from repro_mlflow.runtime.offline import read_bundle

    def history(c, rid):
        run = c.get_run(rid)
        return {k: sorted((m.step, m.value, m.timestamp) for m in c.get_metric_history(rid, k)) for k in run.data.metrics}

    before = {r: history(client, r) for r in rids}
    for i, rid in enumerate(rids):
        run = client.get_run(rid)
        bundle = sched.fetch(run.data.tags["repro.job_id"], rid, Path(run.data.tags["repro.workdir"]))
        meta = read_bundle(bundle)
        off = offline_client(bundle)
        src = off.get_run(meta["offline_run_id"])
        assert run.info.status == "FINISHED"
        assert history(client, rid) == history(off, src.info.run_id)  # every metric, steps and timestamps
        assert len(before[rid]["loss"]) == 4
        for k, v in src.data.tags.items():
            if not k.startswith("mlflow."):
                assert run.data.tags.get(k) == v, k
        assert run.data.tags["user.parity"] == ("odd" if i % 2 else "even")
        assert run.data.tags["repro.slurm.array_id"] == run.data.tags["repro.job_id"]
        assert run.data.params["double"] == str(2 * i) and run.data.params["x"] == str(i)
        assert {a.path for a in client.list_artifacts(rid, "out")} == {"out/x.txt"}

    p = subprocess.run([str(BIN / "repro"), "sync"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert {r: history(client, r) for r in rids} == before  # a second sync duplicates nothing
    for rid in rids:  # nor does a replay called again by hand
        run = client.get_run(rid)
        from repro_mlflow.submit.offline import replay_bundle

        assert replay_bundle(client, rid, sched.fetch(run.data.tags["repro.job_id"], rid,
                                                      Path(run.data.tags["repro.workdir"]))) is False
    assert {r: history(client, r) for r in rids} == before
