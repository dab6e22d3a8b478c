"""The SQL fast paths (bulk run creation, the analysis loader) and their fallback to MLflow's client."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow import mlflow_sql
from repro_mlflow.analysis.load import Selection, load_runs
from repro_mlflow.schedulers.protocol import RunSpec
from repro_mlflow.submit.mlflow_side import create_runs, set_tags_bulk


def specs(n: int) -> list[RunSpec]:
    return [RunSpec("mnist_convnet", {"seed": str(i), "epochs": "1"}, "python train.py",
                    tags={"repro.sweep": "S", "repro.repeat": str(i)}) for i in range(n)]


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("e")


@pytest.fixture
def unknown_schema(monkeypatch):
    """As under an MLflow release newer than the ones whose tables were checked."""
    monkeypatch.setattr(mlflow_sql, "KNOWN_REVISIONS", {})


def test_the_installed_mlflow_schema_is_one_the_fast_paths_know(store):
    _, client, _ = store
    rev = mlflow_sql.store_revision(client._tracking_client.store)
    assert mlflow_sql.is_known(rev), f"MLflow's schema {rev} is unchecked: add it to KNOWN_REVISIONS once checked"
    assert mlflow_sql.sql_store(client) is not None


def runs_as_seen(client: MlflowClient, exp: str) -> list[tuple]:
    out = []
    for r in client.search_runs([exp], order_by=["params.seed"]):
        tags = {k: v for k, v in r.data.tags.items() if k.startswith(("repro.", "mlflow.project"))}
        out.append((r.info.status, r.data.params, tags))
    return sorted(out, key=lambda t: t[1]["seed"])


@pytest.mark.parametrize("schema", ["known", "unknown"])
def test_bulk_creation_gives_the_same_runs_on_either_path(store, request, schema):
    if schema == "unknown":
        request.getfixturevalue("unknown_schema")
        assert mlflow_sql.sql_store(store[1]) is None
    _, client, exp = store
    ids = create_runs(client, exp, specs(3), source="/p")
    set_tags_bulk(client, {ids[0]: {"repro.attempt": "2"}})
    seen = runs_as_seen(client, exp)
    assert [s[0] for s in seen] == ["SCHEDULED"] * 3
    assert [s[1] for s in seen] == [{"seed": str(i), "epochs": "1"} for i in range(3)]
    assert all(s[2]["repro.sweep"] == "S" and s[2]["mlflow.project.entryPoint"] == "mnist_convnet" for s in seen)
    assert client.get_run(ids[0]).data.tags["repro.attempt"] == "2"


def test_tags_of_new_runs_are_inserted_and_one_set_meanwhile_is_replaced_not_lost(store):
    _, client, exp = store
    ids = create_runs(client, exp, specs(3), source="/p")
    client.set_tag(ids[1], "repro.job_id", "early")  # e.g. set by the run itself before the submitter tags it
    set_tags_bulk(client, {rid: {"repro.job_id": f"7_{i}", "repro.array_index": str(i)} for i, rid in enumerate(ids)},
                  new=True)
    tags = [client.get_run(rid).data.tags for rid in ids]
    assert [t["repro.job_id"] for t in tags] == ["7_0", "7_1", "7_2"]
    assert [t["repro.array_index"] for t in tags] == ["0", "1", "2"]
    assert all(t["repro.sweep"] == "S" for t in tags)  # the runs' other tags are kept


def test_the_loader_reads_the_same_table_through_mlflow_client_on_an_unknown_schema(store, monkeypatch):
    uri, client, exp = store
    ids = create_runs(client, exp, specs(4), source="/p")
    for i, rid in enumerate(ids):
        client.log_metric(rid, "test_accuracy", 0.9 + i / 100)
        client.set_terminated(rid, "FINISHED")
    fast = load_runs(uri, Selection(sweep="S"))
    calls = []
    import repro_mlflow.analysis.load as load

    real = load._load_api
    monkeypatch.setattr(load, "_load_api", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(mlflow_sql, "KNOWN_REVISIONS", {})
    slow = load_runs(uri, Selection(sweep="S"))
    assert len(calls) == 1  # the public client was used
    cols = ["run_id", "status", "params.seed", "tags.repro.sweep", "metrics.test_accuracy"]
    pd.testing.assert_frame_equal(fast[cols].reset_index(drop=True), slow[cols].reset_index(drop=True),
                                  check_dtype=False)
    assert sorted(fast["metrics.test_accuracy"]) == [0.9, 0.91, 0.92, 0.93]
