"""Loading runs: sqlite (SQL path), a real `mlflow server` (public API), PostgreSQL; selection and filters."""

import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.analysis import load, pipeline
from repro_mlflow.errors import ReproError

from .servers import mlflow_server, postgres
from .store import add_runs, study


def _fill(uri):
    client = MlflowClient(uri)
    exp = client.create_experiment("study")
    other = client.create_experiment("other")
    add_runs(client, exp, study("S"))
    add_runs(client, exp, [{"tags": {"repro.sweep": "T", "mlflow.project.entryPoint": "x"}, "metrics": {"m": 1.0}}])
    add_runs(client, exp, [{"tags": {"repro.sweep": "S", "repro.fp.env": "z", "mlflow.project.entryPoint": "mnist_convnet"},
                            "status": "FAILED"}])
    add_runs(client, other, [{"tags": {"repro.sweep": "S", "repro.analysis_of": "S"}, "metrics": {"n_runs": 3}}])
    nan = add_runs(client, other, [{"tags": {"foo": "bar"}, "params": {"lr": "0.1"}, "metrics": {"m": float("nan")}}])
    return client, exp, nan[0]


def _reference(uri):
    """What the public API says, shaped like our table."""
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    return {r.info.run_id: r for r in runs}


def _check_against_api(uri, df):
    ref = _reference(uri)
    analysis = [rid for rid, r in ref.items() if "repro.analysis_of" in r.data.tags]
    assert len(analysis) == 1 and analysis[0] not in set(df["run_id"])
    assert set(df["run_id"]) == set(ref) - set(analysis)
    for _, row in df.iterrows():
        r = ref[row["run_id"]]
        assert row["status"] == r.info.status
        for k, v in r.data.params.items():
            assert row[f"params.{k}"] == v
        for k, v in r.data.metrics.items():
            assert (math.isnan(v) and math.isnan(row[f"metrics.{k}"])) or row[f"metrics.{k}"] == v
        for k, v in r.data.tags.items():
            if k.startswith("repro.") and k not in load.SKIP_TAGS:
                assert row[f"tags.{k}"] == v
        assert row["example"] == r.data.tags.get("mlflow.project.entryPoint", "(none)")


def test_sqlite_table_matches_the_public_api(tracking):
    client, exp, nan_id = _fill(tracking)
    df = load.load_runs(tracking, load.Selection())
    _check_against_api(tracking, df)
    assert np.isnan(df.set_index("run_id").loc[nan_id, "metrics.m"])
    # final value of a metric logged per step
    assert df["metrics.loss"].dropna().round(4).isin([round(1 - (v + s / 100), 4) for v in (0.9, 0.91, 0.93) for s in (1, 2)]).all()


def test_sqlite_scan_in_rowid_slices_reads_the_same_table(tracking, monkeypatch):
    _fill(tracking)
    whole = load.load_runs(tracking, load.Selection())
    monkeypatch.setattr(load, "SLICE_MIN_ROWS", 2)  # slice even this small store's tables
    monkeypatch.setattr(load.os, "cpu_count", lambda: 3)
    reader = load._Reader(tracking)
    try:
        parts = reader.slices("tags")
    finally:
        reader.close()
    assert len(parts) == 3 and all("rowid" in p for p in parts)
    sliced = load.load_runs(tracking, load.Selection())
    pd.testing.assert_frame_equal(sliced, whole)
    _check_against_api(tracking, sliced)


@pytest.mark.parametrize("selection", [load.Selection(), load.Selection(sweep="S"), load.Selection(sweep="T"),
                                       load.Selection(sweep="none"), load.Selection(experiments=["other"])])
def test_scans_and_joins_read_the_same_table(tracking, monkeypatch, selection):
    """Whichever way the tables are read (scans of the whole store, or a join on the selection), the same runs."""
    _fill(tracking)
    monkeypatch.setattr(load, "SCAN_SHARE", 0.0)  # always scan
    scanned = load.load_runs(tracking, selection)
    monkeypatch.setattr(load, "SCAN_SHARE", 2.0)  # never: join
    joined = load.load_runs(tracking, selection)
    assert len(scanned) == ({None: 21, "S": 19, "T": 1, "none": 0}[selection.sweep] if not selection.experiments else 1)
    pd.testing.assert_frame_equal(scanned, joined)


def test_selection_by_sweep_experiment_and_filter(tracking):
    _fill(tracking)
    assert len(load.load_runs(tracking, load.Selection(sweep="S"))) == 19  # 18 + the FAILED one, no analysis run
    assert len(load.load_runs(tracking, load.Selection(experiments=["other"]))) == 1
    f = load.load_runs(tracking, load.Selection(sweep="S", filter_string="tags.`repro.fp.env` = 'c' and params.seed = '2'"))
    assert len(f) == 3 and set(f["tags.repro.fp.env"]) == {"c"}
    f = load.load_runs(tracking, load.Selection(filter_string="metrics.test_accuracy >= 0.92"))
    assert sorted(f["metrics.test_accuracy"].round(2).unique()) == [0.92, 0.93, 0.94, 0.95]
    f = load.load_runs(tracking, load.Selection(filter_string="tags.foo = 'bar'"))  # a non-repro tag named by the filter
    assert len(f) == 1 and f["tags.foo"].iloc[0] == "bar"
    f = load.load_runs(tracking, load.Selection(filter_string="attributes.status = 'FAILED'"))
    assert list(f["status"]) == ["FAILED"]
    f = load.load_runs(tracking, load.Selection(filter_string="tags.`repro.fp.env` LIKE 'a%'"))
    assert set(f["tags.repro.fp.env"]) == {"a"}
    with pytest.raises(ReproError, match="no active experiment named 'nope'"):
        load.load_runs(tracking, load.Selection(experiments=["nope"]))
    with pytest.raises(ReproError, match="bad filter"):
        load.load_runs(tracking, load.Selection(filter_string="params.x === 1"))


def test_not_a_tracking_store_is_one_line(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "x.db").execute("create table t (a)").connection.commit()
    with pytest.raises(ReproError, match="not an MLflow tracking store"):
        load.load_runs(f"sqlite:///{tmp_path / 'x.db'}", load.Selection())
    with pytest.raises(ReproError, match="cannot reach"):
        load.load_runs("http://127.0.0.1:1", load.Selection())


def test_http_server_gives_the_same_table_and_analysis(tracking, tmp_path):
    _fill(tracking)
    sql = load.load_runs(tracking, load.Selection(sweep="S"))
    with mlflow_server(tracking, tmp_path) as http:
        api = load.load_runs(http, load.Selection(sweep="S"))
        _check_against_api(http, load.load_runs(http, load.Selection()))
    cols = sorted(c for c in sql.columns if c != "artifact_uri")
    a = sql[cols].sort_values("run_id").reset_index(drop=True)
    b = api[cols].sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    ra, _ = pipeline.analyse(sql, pipeline.Options(artifacts=False))
    rb, _ = pipeline.analyse(api, pipeline.Options(artifacts=False))
    assert ra == rb


def test_postgresql_store():
    with postgres() as uri:
        client, exp, nan_id = _fill(uri)  # MLflow creates its schema
        df = load.load_runs(uri, load.Selection())
        _check_against_api(uri, df)
        plain = load.load_runs(uri.replace("+psycopg2", ""), load.Selection())  # the driver is found
        assert sorted(plain["run_id"]) == sorted(df["run_id"])
        res, _ = pipeline.analyse(load.load_runs(uri, load.Selection(sweep="S")), pipeline.Options(artifacts=False))
        ex = [e for e in res["examples"] if e["example"] == "mnist_convnet"][0]
        assert ex["summary"]["not_repeatable"] == 2 and ex["equivalence"][0]["classes"] == [["a", "b"], ["c"]]


def test_codes_read_with_the_table_number_its_values_as_factorize_does(tracking):
    """The level codes the SQL path numbers while reading tell rows apart exactly as the values do, whatever
    rows the selection, the filter, the analysis runs and the order (ties in start time) leave; and an
    analysis given them says what it says without them."""
    client, exp, _ = _fill(tracking)
    tied = study("S", example="imdb_bilstm")[:6]
    for r in tied[::2]:
        r["tags"].pop("repro.site")  # missing in some runs: None is a level of its own
    add_runs(client, exp, tied, start=1_000)  # start times equal to the first runs': sorted by run id
    for sel in (load.Selection(), load.Selection(sweep="S"),
                load.Selection(sweep="S", filter_string="params.seed = '2'")):
        t = load.read_runs(tracking, sel)
        assert t.frame.equals(load.load_runs(tracking, sel))
        text = [c for c in t.frame.columns if c.startswith(("params.", "tags."))]
        assert text and sorted(t.codes) == sorted(text)
        for c in text:
            assert np.array_equal(pd.factorize(t.codes[c])[0], pd.factorize(t.frame[c], use_na_sentinel=False)[0]), c
    t = load.read_runs(tracking, load.Selection(sweep="S"))
    assert t.frame["tags.repro.site"].isna().sum() == 4 and (t.frame["status"] == "FAILED").sum() == 1
    opt = pipeline.Options(artifacts=False)  # FINISHED only: the codes are cut as the table is
    with_codes, _ = pipeline.analyse(t.frame, opt, tracking, t.codes)
    assert with_codes == pipeline.analyse(t.frame, opt, tracking)[0]
    assert with_codes["n_runs"] == len(t.frame) - 1


def test_a_sql_store_gives_the_repro_tags_but_run_unique_ones_and_the_tags_named(tracking):
    client = MlflowClient(tracking)
    exp = client.create_experiment("study")
    add_runs(client, exp, [{"tags": {"repro.sweep": "S", "repro.fp.env": "a", "repro.job_id": "7_0", "repro.workdir": "/w",
                                     "foo": "bar", "Repro.upper": "x", "mlflow.user": "u"}, "metrics": {"m": 1.0}}])
    cols = set(load.load_runs(tracking, load.Selection(sweep="S")).columns)
    assert {"tags.repro.sweep", "tags.repro.fp.env", "tags.mlflow.runName"} <= cols
    assert not cols & {"tags.repro.job_id", "tags.repro.workdir", "tags.foo", "tags.Repro.upper", "tags.mlflow.user"}
    named = load.load_runs(tracking, load.Selection(sweep="S", tags=["tags.foo"]))
    assert named["tags.foo"].tolist() == ["bar"]
