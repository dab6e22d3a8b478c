"""`repro status` / `repro sync` read a SQL store through `mlflow_sql` (a GROUP BY, the live runs' tags only)
and show exactly what reading every run through MlflowClient shows (issue 27 item 4)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow import mlflow_sql
from repro_mlflow.cli import main
from repro_mlflow.submit.sync import unfinished_runs

LONG = "RuntimeError: CUDA error: an illegal memory access was encountered in a kernel launched by train.py"


@pytest.fixture
def store(tracking, tmp_path):
    """Two experiments (and a deleted one) of repro runs in every state, two sweeps, two targets, a deleted run
    and a run that is not a repro run; the live runs' local jobs are gone."""
    client = MlflowClient()
    e1, e2, gone = (client.create_experiment(n) for n in ("e1", "e2", "gone"))
    ids = {"live": []}

    def run(exp, status, sweep="S", target="a", reason=None, backend="local", i=[0]):  # noqa: B006 - a counter
        i[0] += 1
        tags = {"repro.sweep": sweep, "repro.target": target, "repro.job_id": f"h:{tmp_path / 'nobatch'}:{i[0]}"}
        if backend:
            tags["repro.backend"] = backend
        if reason:
            tags["repro.status_reason"] = reason
        r = client.create_run(exp, tags=tags)
        client.log_param(r.info.run_id, "seed", str(i[0]))
        client.update_run(r.info.run_id, status=status)
        if status in ("SCHEDULED", "RUNNING") and backend:
            ids["live"].append(r.info.run_id)
        return r.info.run_id

    for _ in range(3):
        run(e1, "FINISHED")
    run(e1, "FINISHED", target="b")
    run(e1, "FAILED", reason=LONG)
    run(e1, "FAILED", target="b", reason=LONG)
    run(e1, "FAILED", reason="exit code 137")
    run(e1, "KILLED", sweep="T", reason="cancelled")
    run(e1, "SCHEDULED")
    run(e1, "RUNNING", sweep="T", target="b")
    run(e2, "SCHEDULED", sweep="T")
    run(e2, "FINISHED", sweep="T")
    run(e1, "FINISHED", backend=None)  # not a repro run
    client.delete_run(run(e1, "SCHEDULED"))
    ids["live"].pop()
    run(gone, "SCHEDULED")
    ids["live"].pop()
    client.delete_experiment(gone)
    return client, ids


def _status(args, capsys) -> tuple[int, str]:
    rc = main(["status", *args])
    return rc, capsys.readouterr().out


def _no_search_runs(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the fast path read runs through MlflowClient.search_runs")

    monkeypatch.setattr(MlflowClient, "search_runs", refuse)


@pytest.mark.parametrize("args", [[], ["--sweep", "S"], ["--experiment", "e2"], ["--sweep", "T", "--experiment", "e1"]])
def test_status_on_a_sql_store_shows_what_the_mlflow_client_shows(store, tracking, capsys, monkeypatch, args):
    assert mlflow_sql.read_engine(tracking) is not None
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("REPRO_PUBLIC_READS", "1")
    public = _status(args, capsys)
    monkeypatch.delenv("REPRO_PUBLIC_READS")
    with monkeypatch.context() as m:
        _no_search_runs(m)
        fast = _status(args, capsys)
    assert fast == public
    assert fast[0] == 0


def test_status_counts_and_reasons(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _no_search_runs(monkeypatch)
    rc, out = _status([], capsys)
    assert rc == 0
    assert "12 repro run(s)" in out  # not the plain run, the deleted run, nor the deleted experiment's
    lines = [x for x in out.splitlines() if " FAILED: " in x or " KILLED: " in x]
    assert [x.split(" (e.g.")[0] for x in lines] == [f"2 FAILED: {LONG}", "1 FAILED: exit code 137", "1 KILLED: cancelled"]
    rc, out = _status(["--sweep", "T", "--experiment", "e2"], capsys)
    assert "2 repro run(s)" in out
    assert main(["status", "--experiment", "nosuch"]) == 1
    assert "no experiment named 'nosuch'" in capsys.readouterr().err


def test_sync_on_a_sql_store_ends_the_live_runs_whose_jobs_are_gone(store, capsys, monkeypatch):
    client, ids = store
    expected = {r.info.run_id for r in unfinished_runs(client, [e.experiment_id for e in client.search_experiments()])}
    assert expected == set(ids["live"]) and len(expected) == 3
    with monkeypatch.context() as m:
        _no_search_runs(m)
        assert main(["sync", "--sweep", "S"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("checked 1 unfinished run(s); ended 1;")
        assert main(["sync"]) == 0
        assert capsys.readouterr().out.startswith("checked 2 unfinished run(s); ended 2;")
    for rid in expected:
        run = client.get_run(rid)
        reason = run.data.tags["repro.status_reason"]  # the job is gone and its local store with it
        assert run.info.status == "FAILED" and reason.startswith("local results lost: "), reason
        assert reason.endswith("/offline missing"), reason
