"""repro-htcondor against a real one-machine HTCondor 25.14 pool (tests/services/htcondor.py), through the
real `htcondor2.Schedd` of the pip wheel: matchmaking, file transfer, initialdir, max_retries, holds,
releases, removes and evictions are HTCondor's own.

The tracking store is a sqlite file on the submit side: the jobs log offline and every result reaches
the real run through the transferred `repro_out/`. Jobs run as the pool's ordinary job user, with a
Python it can read (`condor_pool.python`). With `REPRO_RECORD_EVENTS=DIR` each test copies its
cluster's event log there (how tests/fixtures/htcondor/pool_*.log were recorded).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import htcondor2
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from repro_mlflow.submit.sync import sync_runs
from tests.conftest import BIN, ROOT
from tests.helpers import wait_terminal
from tests.htcondor.job_user import install, sitecustomize_dir

TERMINAL = ("FINISHED", "FAILED", "KILLED")


@pytest.fixture
def pool(condor_env, tracking, monkeypatch, request):
    """The pool, with REPRO_HOME in a directory the job user can write (batches must be: the shadow
    writes the event log and the outputs there as the job's owner)."""
    home = condor_env.home / request.node.name[:60]
    home.mkdir(mode=0o777)
    monkeypatch.setenv("REPRO_HOME", str(home))
    install(condor_env.job_user, monkeypatch.setattr)  # the batch directory is the job owner's (job_user.py)
    return condor_env


def _base(pool) -> dict:
    return {"python": str(pool.python), "request_memory": "256MB", "request_disk": "200MB"}


def _submit(tracking, project, entries, pool, experiment, **config):
    client = MlflowClient(tracking)
    sched = get_scheduler("htcondor", {**_base(pool), **config})
    specs = [make_spec(project, e, p) for e, p in entries]
    ids = submit_batch(client, sched, specs, project, experiment, tracking)
    return client, sched, ids


def _jobs(client, ids):
    return [client.get_run(i).data.tags["repro.job_id"] for i in ids]


def _wait_states(sched, jobs, want, timeout=90):
    """Poll (one event-log read per call) until every job's state is in `want`; return the states."""
    end = time.monotonic() + timeout
    while True:
        states = sched.poll(jobs)
        if all(states[j].state in want or states[j].state in TERMINAL for j in jobs):
            got = [states[j] for j in jobs]
            assert all(s.state in want for s in got), ([(s.state, s.reason) for s in got], _errors(jobs))
            return got
        if time.monotonic() > end:
            raise AssertionError(f"not {want} after {timeout}s: {[(s.state, s.reason) for s in states.values()]}")
        time.sleep(0.5)


def _errors(jobs) -> str:
    """The tail of every proc's job.err (what the wrapper and the runtime said), for failure messages."""
    out = []
    for j in jobs:
        head, _, wd = j.partition("@")
        for name in ("job.err", "job.out"):
            f = Path(wd) / "runs" / head.split(".")[1] / name
            out.append(f"{head} {name}: " + (f.read_text()[-1500:] if f.exists() else "missing"))
    return "\n".join(out)


def _sync_until_terminal(client, ids, timeout=120):
    return wait_terminal(ids, timeout, client, between=lambda runs: sync_runs(client, runs))


def _history(client, rid, key="y"):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(rid, key), key=lambda m: m.step)]


def _workdir(client, rid) -> Path:
    return Path(client.get_run(rid).data.tags["repro.workdir"])


def _record(request, workdir: Path) -> None:
    dest = os.environ.get("REPRO_RECORD_EVENTS")
    if dest:
        shutil.copyfile(workdir / "cluster.log", Path(dest) / f"pool_{request.node.name.removeprefix('test_')}.log")


def _condor(pool, *cmd):
    return pool.run(*cmd, check=True)


def test_pool_came_up_within_60_s_on_loopback_with_its_slot_and_schedd(pool):
    assert pool.start_s < 60
    slots = htcondor2.Collector(f"127.0.0.1:{pool.collector_port}").query(
        htcondor2.AdType.Startd, projection=["Name", "PartitionableSlot", "MyAddress"])
    assert slots and all(ad["MyAddress"].startswith("<127.0.0.1:") for ad in slots)
    assert any(ad.get("PartitionableSlot") for ad in slots)
    assert htcondor2.Schedd().query("True", projection=["ClusterId"]) is not None  # the token's user may ask


def test_batch_is_one_cluster_run_in_initialdirs_results_transferred_and_replayed_once(
        pool, tracking, project, experiment, cli_env, request):
    client, sched, ids = _submit(tracking, project, [("ok", {"x": str(x)}) for x in (1, 2, 3)], pool, experiment)
    jobs = _jobs(client, ids)
    clusters = {j.split("@")[0].split(".")[0] for j in jobs}
    assert len(clusters) == 1 and [j.split("@")[0].split(".")[1] for j in jobs] == ["0", "1", "2"]
    cluster = int(clusters.pop())
    ads = htcondor2.Schedd().query(f"ClusterId == {cluster}", projection=["ProcId", "Iwd", "Args", "Owner"])
    wd = _workdir(client, ids[0])
    assert sorted((int(a["ProcId"]), a["Iwd"], a["Args"]) for a in ads) == [
        (i, str(wd / "runs" / str(i)), f"repro_job.py {rid} {i}") for i, rid in enumerate(ids)]
    assert {a["Owner"] for a in ads} == {pool.job_user}

    _wait_states(sched, jobs, {"FINISHED"})
    env = dict(cli_env, **{k: os.environ[k] for k in ("CONDOR_CONFIG", "_CONDOR_SEC_TOKEN_DIRECTORY",
                                                       "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS", "REPRO_HOME")})
    first = subprocess.run([str(BIN / "repro"), "sync"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
                           check=False)
    assert first.returncode == 0, first.stderr
    for i, (rid, x) in enumerate(zip(ids, (1.0, 2.0, 3.0))):
        run = client.get_run(rid)
        assert run.info.status == "FINISHED"
        assert _history(client, rid) == [(0, x * 2), (1, x * 3)]
        assert run.data.params["seen_x"] == str(x)
        t = run.data.tags
        assert t["repro.offline"] == "1" and t["repro.replayed"] and t["repro.fp.hw"] and t["repro.hw.cpu.model"]
        out = wd / "runs" / str(i)
        assert "trained" in (out / "job.out").read_text()  # HTCondor's output file, in the proc's initialdir
        assert (out / "repro_out" / "output.log").is_file()  # transferred back by HTCondor
        fp = json.loads(Path(client.download_artifacts(rid, "repro/fingerprint.json", str(wd / f"fp{i}"))).read_text())
        condor = fp["site"]["condor"]  # read in the sandbox from the .machine.ad / .job.ad the starter wrote
        assert condor["machine"]["Name"].startswith("slot1_") and condor["machine"]["Name"].endswith(f"@{pool.hostname}")
        assert (condor["job"]["ClusterId"], condor["job"]["ProcId"]) == (str(cluster), str(i))
        assert t["repro.site"] == pool.hostname
    before = [(r.info.status, _history(client, r.info.run_id), len(client.list_artifacts(r.info.run_id, "repro")))
              for r in map(client.get_run, ids)]
    second = subprocess.run([str(BIN / "repro"), "sync"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
                           check=False)
    assert second.returncode == 0, second.stderr
    after = [(r.info.status, _history(client, r.info.run_id), len(client.list_artifacts(r.info.run_id, "repro")))
             for r in map(client.get_run, ids)]
    assert after == before and sync_runs(client, [client.get_run(i) for i in ids]).replayed == []
    _record(request, wd)


def test_a_finished_job_whose_transferred_store_is_gone_ends_failed_never_finished(pool, tracking, project,
                                                                                    experiment):
    client, sched, ids = _submit(tracking, project, [("ok", {"x": str(x)}) for x in (1, 2)], pool, experiment)
    jobs = _jobs(client, ids)
    _wait_states(sched, jobs, {"FINISHED"})  # logged after the shadow transferred the outputs back
    lost = _workdir(client, ids[1]) / "runs" / "1" / "repro_out" / "offline"
    assert (lost / "bundle.json").is_file()
    shutil.rmtree(lost)  # a scratch purge on the access point
    sync_runs(client, [client.get_run(i) for i in ids])
    kept, gone = (client.get_run(i) for i in ids)
    assert kept.info.status == "FINISHED" and _history(client, ids[0]) == [(0, 2.0), (1, 3.0)]
    assert gone.info.status == "FAILED" and gone.data.metrics == {}
    assert gone.data.tags["repro.status_reason"] == f"local results lost: {lost} missing"


def test_nonzero_exit_is_retried_by_max_retries_then_failed(pool, tracking, project, experiment, request):
    client, sched, [rid] = _submit(tracking, project, [("fail", {})], pool, experiment, max_retries=1)
    [st] = _wait_states(sched, _jobs(client, [rid]), {"FAILED"})
    assert (st.reason, st.attempt) == ("exit code 3", 2)
    [run] = _sync_until_terminal(client, [rid])
    assert run.data.tags["repro.status_reason"] == "exit code 3" and run.data.tags["repro.attempt"] == "2"
    log = (_workdir(client, rid) / "cluster.log").read_text()
    assert log.count("Job executing on host") == 2  # HTCondor ran it twice: max_retries = 1
    _record(request, _workdir(client, rid))


def test_missing_input_is_held_released_by_policy_then_failed_with_htcondors_reason(pool, tracking, project, experiment,
                                                                                   request):
    client, _sched, [rid] = _submit(tracking, project, [("ok", {})], pool, experiment, max_releases=1, max_retries=0)
    wd = _workdir(client, rid)
    (wd / "project.tar.gz").unlink()  # an input file gone before the shadow sends it
    [run] = _sync_until_terminal(client, [rid])
    _record(request, wd)
    reason = run.data.tags["repro.status_reason"]
    assert run.info.status == "FAILED"
    assert reason.startswith("held (HoldReasonCode 13, subcode 2): Transfer input files failure at access point")
    assert "reading from file" in reason
    log = (wd / "cluster.log").read_text()
    assert log.count("Job was held.") == 2 and log.count("Job was released.") == 1  # released once (max_releases)
    assert "Job was aborted." in log  # then removed: nothing left held in the queue
    cluster = client.get_run(rid).data.tags["repro.job_id"].split(".")[0]
    assert htcondor2.Schedd().query(f"ClusterId == {cluster}", projection=["ProcId"]) == []
    _record(request, wd)


def test_condor_hold_fails_condor_rm_and_cancel_kill(pool, tracking, project, experiment, request):
    client, sched, ids = _submit(tracking, project, [("slow", {"x": str(x)}) for x in (1, 2, 3)], pool, experiment)
    jobs = _jobs(client, ids)
    _wait_states(sched, jobs, {"RUNNING"})
    c = jobs[0].split(".")[0]
    _condor(pool, "condor_hold", f"{c}.0")
    _condor(pool, "condor_rm", f"{c}.1")
    sched.cancel([jobs[2]])  # what ReproSubmittedRun.cancel and `repro` do
    runs = _sync_until_terminal(client, ids)
    _record(request, _workdir(client, ids[0]))
    assert [r.info.status for r in runs] == ["FAILED", "KILLED", "KILLED"]
    held, removed, cancelled = (r.data.tags["repro.status_reason"] for r in runs)
    assert held == f"held (HoldReasonCode 1, subcode 0): via condor_hold (by user {pool.job_user})"
    assert removed == f"via condor_rm (by user {pool.job_user})"
    assert cancelled == "removed"  # JobAction.Remove leaves no reason in the event log (ReproSubmittedRun.cancel says "cancelled")
    assert htcondor2.Schedd().query(f"ClusterId == {c}", projection=["ProcId"]) == []  # the held one removed too
    _record(request, _workdir(client, ids[0]))


def test_eviction_keeps_one_run_with_attempt_2_and_the_second_attempts_results(pool, tracking, project, experiment,
                                                                              request):
    client, sched, [rid] = _submit(tracking, project, [("slow", {"x": "5"})], pool, experiment)
    [job] = _jobs(client, [rid])
    [st] = _wait_states(sched, [job], {"RUNNING"})
    assert st.attempt == 1
    time.sleep(1.5)  # the command is under way
    _condor(pool, "condor_vacate_job", job.split("@")[0])
    end = time.monotonic() + 60
    while (st := sched.poll([job])[job]).attempt < 2 and time.monotonic() < end:
        time.sleep(0.3)
    assert st.attempt == 2 and st.state in ("SCHEDULED", "RUNNING")
    [run] = _sync_until_terminal(client, [rid])
    assert run.info.status == "FINISHED" and run.data.tags["repro.attempt"] == "2"
    assert _history(client, rid) == [(0, 10.0), (1, 15.0)]  # the completed attempt's results, once
    assert len(client.search_runs([experiment])) == 1
    log = (_workdir(client, rid) / "cluster.log").read_text()
    assert log.count("Job was evicted.") == 1 and log.count("Job executing on host") == 2
    _record(request, _workdir(client, rid))


def test_sweep_on_a_target_pointing_at_the_pool(pool, tracking, cli_env, tmp_path):
    """`repro-sweep hardware=osg_cpu` without the container (no Apptainer here), with the job's Python: one
    cluster. The target's `Microarch` requirement is matched for real by the negotiator (the startd
    advertises it) where this CPU is x86_64-v3 or v4."""
    from tests.sweep.conftest import echo_args, runs, sweep

    MlflowClient(tracking).create_experiment("repro", artifact_location=(tmp_path / "artifacts").as_uri())
    site = sitecustomize_dir(tmp_path / "site", pool.job_user)
    env = dict(cli_env, PYTHONUNBUFFERED="1", COLUMNS="200", PYTHONPATH=f"{site}{os.pathsep}{cli_env['PYTHONPATH']}")
    microarch = pool.run("condor_status", "-af", "Microarch").stdout.split()
    keep = microarch and microarch[0] in ("x86_64-v3", "x86_64-v4")
    p = sweep(echo_args("hardware=osg_cpu", "hardware.container=null",
                        *([] if keep else ["hardware.backend_config.microarch=null"]),
                        "hardware.backend_config.request_memory=256MB", "hardware.backend_config.request_disk=200MB",
                        f"+hardware.backend_config.python={pool.python}", "seed=1,2,3", "sweep=pool3",
                        "poll_interval=1"), env, timeout=300)
    assert "3 submitted in 1 batch(es)" in p.stderr and "sweep pool3: 3 FINISHED" in p.stderr, p.stderr
    done = runs("tags.`repro.sweep` = 'pool3' and attributes.status = 'FINISHED'")
    assert len(done) == 3
    assert len({r.data.tags["repro.job_id"].split(".")[0] for r in done}) == 1  # one cluster
    assert {r.data.tags["repro.target"] for r in done} == {"osg_cpu"}
    assert all(r.data.tags["repro.site"] == pool.hostname and r.data.tags["repro.fp.env"] for r in done)
    if keep:
        sub = (Path(done[0].data.tags["repro.workdir"]) / "job.sub").read_text()
        assert 'requirements = (Microarch == "x86_64-v3" || Microarch == "x86_64-v4")' in sub
    for r in done:
        out = Path(r.data.tags["repro.workdir"]) / "runs" / r.data.tags["repro.array_index"] / "job.out"
        assert f"python={pool.python}" in out.read_text()  # the command's `python` is the job's Python


def test_a_batch_over_max_jobs_per_submission_is_several_clusters_all_followed(pool, tracking, project, experiment):
    """MAX_JOBS_PER_SUBMISSION=2 (this access point's configuration, read with htcondor2.param): 5 runs are
    three submits (clusters of 2, 2 and 1 procs), each in the batch record; sync follows every one to FINISHED."""
    os.environ["_CONDOR_MAX_JOBS_PER_SUBMISSION"] = "2"
    htcondor2.reload_config()
    try:
        client, sched, ids = _submit(tracking, project, [("ok", {"x": str(x)}) for x in (1, 2, 3, 4, 5)], pool,
                                     experiment)
    finally:
        del os.environ["_CONDOR_MAX_JOBS_PER_SUBMISSION"]
        htcondor2.reload_config()
    jobs = _jobs(client, ids)
    heads = [j.split("@")[0].split(".") for j in jobs]
    clusters = list(dict.fromkeys(c for c, _p in heads))
    assert len(clusters) == 3 and [p for _c, p in heads] == ["0", "1", "0", "1", "0"]
    from repro_mlflow.runtime.record import read

    record = read(client.get_run(ids[0]).data.tags["repro.record"])
    assert [(p["id"], p["first"], p["count"]) for p in record.parts] == [
        (clusters[0], 0, 2), (clusters[1], 2, 2), (clusters[2], 4, 1)]
    runs = _sync_until_terminal(client, ids, timeout=240)
    assert [r.info.status for r in runs] == ["FINISHED"] * 5, _errors(jobs)
    for rid, x in zip(ids, (1.0, 2.0, 3.0, 4.0, 5.0)):  # each run its own parameters and its own results
        assert _history(client, rid) == [(0, x * 2), (1, x * 3)]
