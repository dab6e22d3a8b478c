"""End to end through the schedd double: submit a batch (one cluster), run the procs in sandboxes, read
the event log, bring results back by output transfer and replay them with `repro sync`.

The tracking store is a sqlite file on the submit side, which an execute point cannot reach: the jobs
log offline (REPRO_OFFLINE=1 in their environment) and every metric, tag and artifact reaches the
real run only through the transferred offline store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import htcondor2
import mlflow
import pytest
from mlflow.tracking import MlflowClient
from tests.htcondor.schedd_double import Fault

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.schedulers.htcondor import scheduler as hc
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from repro_mlflow.submit.sync import sync_runs
from repro_mlflow.errors import ReproError


def _submit(tracking, project, entries, config=None, experiment="0"):
    client = MlflowClient(tracking)
    sched = get_scheduler("htcondor", config or {})
    specs = [make_spec(project, e, p) for e, p in entries]
    ids = submit_batch(client, sched, specs, project, experiment, tracking)
    return client, sched, ids


def _sync(client, ids):
    return sync_runs(client, [client.get_run(i) for i in ids])


def _poll(client, sched, ids):
    jobs = [client.get_run(i).data.tags["repro.job_id"] for i in ids]
    states = sched.poll(jobs)
    return [states[j] for j in jobs]


def _history(client, rid, key="y"):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(rid, key), key=lambda m: m.step)]


def test_batch_is_one_cluster_and_runs_finish_with_fingerprint_and_replayed_results(tracking, double, project, experiment,
                                                                                   cli_env):
    client, sched, ids = _submit(tracking, project, [("ok", {"x": "2"}), ("ok", {"x": "3"})], experiment=experiment)
    tags = [client.get_run(i).data.tags for i in ids]
    assert [t["repro.job_id"].split("@")[0] for t in tags] == ["4201.0", "4201.1"]  # one cluster, proc i = run i
    assert [j.ad()["Args"] for j in double.jobs.values()] == [f"{ids[0]} 0", f"{ids[1]} 1"]
    assert [s.state for s in _poll(client, sched, ids)] == ["SCHEDULED", "SCHEDULED"]

    double.run_all()
    # `repro sync` in its own process: no backend config, no schedd needed for jobs that ended
    r = subprocess.run([str(Path(sys.executable).parent / "repro"), "sync"], env=cli_env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for rid, x in zip(ids, (2.0, 3.0)):
        run = client.get_run(rid)
        assert run.info.status == "FINISHED"
        assert _history(client, rid) == [(0, x * 2), (1, x * 3)]
        assert run.data.params["seen_x"] == str(x)
        t = run.data.tags
        assert t["repro.fp.hw"] and t["repro.fp.sw"] and t["repro.hw.cpu.model"]
        assert t["repro.offline"] == "1" and t["repro.replayed"]
        arts = {a.path for a in client.list_artifacts(rid, "repro")}
        assert {"repro/fingerprint.json", "repro/output.log"} <= arts
        wd = Path(t["repro.workdir"])
        i = int(t["repro.array_index"])
        assert "trained" in (wd / "runs" / str(i) / "job.out").read_text()  # HTCondor's output file came back
        fp = json.loads(Path(client.download_artifacts(rid, "repro/fingerprint.json", str(wd / "fp"))).read_text())
        condor = fp["site"]["condor"]  # read on the execute point from the sandbox's machine and job ads
        assert condor["machine"]["Name"] == "slot1@gthain.localdomain"
        assert (condor["job"]["ClusterId"], condor["job"]["ProcId"]) == ("4201", str(i))
    # a second sync changes nothing: replayed exactly once
    assert _sync(client, ids).replayed == []
    assert _history(client, ids[0]) == [(0, 4.0), (1, 6.0)]


def test_reachable_store_finishes_with_fingerprint_tags(tracking, double, project, experiment):
    """With `offline: false` the job writes straight to the store (which this one 'execute point' can reach)."""
    client, sched, [rid] = _submit(tracking, project, [("ok", {"x": "2"})], {"offline": False}, experiment=experiment)
    double.run_all()
    assert _poll(client, sched, [rid])[0].state == "FINISHED"
    _sync(client, [rid])
    run = client.get_run(rid)
    assert run.info.status == "FINISHED"
    assert _history(client, rid) == [(0, 4.0), (1, 6.0)]
    assert run.data.tags["repro.fp.hw"] and run.data.tags["repro.hw.cpu.model"]
    assert "repro.offline" not in run.data.tags


def test_evicted_then_completed_keeps_one_run_with_attempt_2(tracking, double, project, experiment):
    client, sched, [rid] = _submit(tracking, project, [("slow", {"x": "5"})], experiment=experiment)
    [job] = double.idle()
    double.start(job)
    [st] = _poll(client, sched, [rid])
    assert (st.state, st.attempt) == ("RUNNING", 1)
    _sync(client, [rid])
    assert client.get_run(rid).info.status == "RUNNING"
    double.evict(job)  # while the command runs
    [st] = _poll(client, sched, [rid])
    assert (st.state, st.attempt) == ("SCHEDULED", 2)
    _sync(client, [rid])
    assert client.get_run(rid).data.tags["repro.attempt"] == "2"
    assert client.get_run(rid).info.status not in ("FINISHED", "FAILED", "KILLED")

    double.run_all()
    _sync(client, [rid])
    run = client.get_run(rid)
    assert run.info.status == "FINISHED"
    assert run.data.tags["repro.attempt"] == "2"
    assert _history(client, rid) == [(0, 10.0), (1, 15.0)]  # the second attempt's results, once
    assert len(client.search_runs([experiment])) == 1
    log = (Path(run.data.tags["repro.workdir"]) / "cluster.log").read_text()
    assert log.count("Job was evicted.") == 1 and log.count("Job executing on host") == 2


def test_held_job_fails_with_its_hold_reason_or_is_released_by_policy(tracking, double, project, experiment):
    client, sched, ids = _submit(tracking, project, [("ok", {"x": "1"}), ("ok", {"x": "2"})], {"max_releases": 1}, experiment=experiment)
    reason = ("Transfer input files failure at execution point slot1_1@schedd-double using protocol https. "
              "Details: could not connect")
    double.faults[0] = [Fault("hold", reason, 13, 2), Fault("hold", reason, 13, 2)]  # held twice
    double.faults[1] = [Fault("hold", reason, 13, 2)]  # held once
    double.run_all()
    assert [s.state for s in _poll(client, sched, ids)] == ["SCHEDULED", "SCHEDULED"]  # both to be released (1st hold)
    assert {j.status for j in double.jobs.values()} == {5}  # poll only reads: both still held
    jobs = [client.get_run(i).data.tags["repro.job_id"] for i in ids]
    sched.reconcile(jobs, {})
    assert {j.status for j in double.jobs.values()} == {1}  # reconcile released them

    double.run_all()  # proc 0 is held again, proc 1 runs
    _sync(client, ids)
    held, ran = client.get_run(ids[0]), client.get_run(ids[1])
    assert held.info.status == "FAILED"
    assert held.data.tags["repro.status_reason"] == f"held (HoldReasonCode 13, subcode 2): {reason}"
    assert double.query("ClusterId == 4201 && ProcId == 0") == []  # removed from the queue, not left held
    assert ran.info.status == "FINISHED" and _history(client, ids[1]) == [(0, 4.0), (1, 6.0)]
    _sync(client, ids)  # after the removal the log says held -> aborted: still FAILED with the hold reason
    assert client.get_run(ids[0]).data.tags["repro.status_reason"].startswith("held (HoldReasonCode 13, subcode 2): Transfer input files failure")


def test_failed_run_is_retried_by_htcondor_then_failed(tracking, double, project, experiment):
    client, sched, [rid] = _submit(tracking, project, [("fail", {})], {"max_retries": 1}, experiment=experiment)
    double.run(double.idle()[0])
    [st] = _poll(client, sched, [rid])
    assert (st.state, st.attempt, st.reason) == ("SCHEDULED", 2, "exit code 3, requeued")
    double.run_all()
    _sync(client, [rid])
    run = client.get_run(rid)
    assert run.info.status == "FAILED"
    assert run.data.tags["repro.status_reason"] == "exit code 3"
    assert run.data.tags["repro.attempt"] == "2"


def test_mlflow_run_backend_and_cancel(tracking, double, project, experiment):
    submitted = mlflow.projects.run(str(project), entry_point="ok", parameters={"x": "1"}, backend="repro-htcondor",
                                    experiment_id=experiment,
                                    backend_config={"project_name": "Repro_Test"}, synchronous=False)
    rid = submitted.run_id
    assert client_status(tracking, rid) == "SCHEDULED"
    [job] = double.jobs.values()
    assert job.cmds["my.projectname"] == '"Repro_Test"'
    submitted.cancel()
    assert double.query("ClusterId == 4201") == []
    run = MlflowClient(tracking).get_run(rid)
    assert run.info.status == "KILLED"
    log = (Path(run.data.tags["repro.workdir"]) / "cluster.log").read_text()
    assert "009 (4201.000.000)" in log and run.data.tags["repro.status_reason"] == "cancelled"


def client_status(tracking, rid):
    return MlflowClient(tracking).get_run(rid).info.status


def test_dry_run_writes_the_files_and_a_hand_submission_is_followed(tracking, double, project, experiment):
    client, sched, [rid] = _submit(tracking, project, [("ok", {"x": "4"})], {"dry_run": True}, experiment=experiment)
    assert double.jobs == {}  # nothing went to any schedd
    wd = Path(client.get_run(rid).data.tags["repro.workdir"])
    assert client.get_run(rid).data.tags["repro.job_id"] == f"dry-run.0@{wd}"
    assert (wd / "items.txt").read_text() == f"{rid},0\n"
    record = json.loads((wd / "batch.json").read_text())  # the batch record, an input file of every proc
    assert record["runs"][0]["command"] == "python train.py 4" and record["worker"]["offline"] is True
    assert record["worker"]["cwd"] == "project" and record["worker"]["run_dir"] == "repro_out"  # in the sandbox
    [st] = _poll(client, sched, [rid])
    assert st.state == "SCHEDULED" and "condor_submit" in st.reason

    # the user runs `condor_submit job.sub`: the real parser reads the file and its item file
    double.submit(htcondor2.Submit((wd / "job.sub").read_text()))
    double.run_all()
    _sync(client, [rid])
    assert client.get_run(rid).info.status == "FINISHED"
    assert _history(client, rid) == [(0, 8.0), (1, 12.0)]


def test_no_schedd_is_a_one_line_error_and_leaves_nothing(tracking, project, monkeypatch):
    monkeypatch.setattr(hc, "SCHEDD_FACTORY", None)
    client = MlflowClient(tracking)
    with pytest.raises(ReproError) as e:
        _submit(tracking, project, [("ok", {})])
    assert str(e.value).startswith("htcondor: cannot reach the schedd") and "\n" not in str(e.value)
    assert client.search_runs(["0"]) == []
    batches = Path(tracking[len("sqlite:///"):]).parent / "repro" / "batches"
    assert not batches.exists() or list(batches.iterdir()) == []


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a system python3 without mlflow")
def test_container_without_mlflow_bootstraps_it_with_pip(tracking, project, experiment, tmp_path, monkeypatch):
    """A stock container (here: the system python, which has no mlflow): the job installs mlflow-skinny
    with pip before the runtime starts. With no package index reachable, the install fails and says so."""
    from tests.htcondor.schedd_double import ScheddDouble

    if subprocess.call(["/usr/bin/python3", "-c", "import mlflow"], stderr=subprocess.DEVNULL) == 0:
        pytest.skip("the system python has mlflow")
    stock = ScheddDouble(tmp_path / "stock", "/usr/bin")
    monkeypatch.setattr(hc, "SCHEDD_FACTORY", lambda name, collector: stock)
    client, sched, [rid] = _submit(tracking, project, [("ok", {})],
                                   {"max_retries": 0, "env": {"PIP_NO_INDEX": "1"}, "pip": ["mlxtend"]},
                                   experiment=experiment)
    stock.run_all()
    _sync(client, [rid])
    run = client.get_run(rid)
    wd = Path(run.data.tags["repro.workdir"])
    err = (wd / "runs" / "0" / "job.err").read_text()
    assert "repro job: installing mlflow-skinny mlxtend into" in err
    assert "pip could not install ['mlflow-skinny', 'mlxtend']" in err
    assert run.info.status == "FAILED" and run.data.tags["repro.status_reason"] == "exit code 1"


def test_a_job_gone_from_log_and_queue_ends_failed(tracking, double, project, experiment):
    client, sched, [rid] = _submit(tracking, project, [("ok", {})], experiment=experiment)
    wd = Path(client.get_run(rid).data.tags["repro.workdir"])
    (wd / "cluster.log").unlink()  # the log is lost...
    assert _poll(client, sched, [rid])[0].state == "SCHEDULED"  # ...but the schedd still has the job
    double.jobs.clear()  # and now the schedd forgot it too
    [st] = _poll(client, sched, [rid])
    assert (st.state, st.reason) == (None, "not in the schedd's queue and not in the event log")
    _sync(client, [rid])
    run = client.get_run(rid)
    assert run.info.status == "FAILED"
    assert run.data.tags["repro.status_reason"] == "not in the schedd's queue and not in the event log"
