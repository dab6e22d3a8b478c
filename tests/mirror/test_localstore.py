"""The SQLite local store (runtime/localstore.py): a copy of a cached migrated database, written by
an entry point through MLflow's own client and read back through MlflowClient only."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient

from repro_mlflow.runtime import localstore

CHILD = ("import mlflow\n"
         "with mlflow.start_run():\n"
         "    mlflow.log_param('lr', '0.1')\n"
         "    for s in range(3):\n"
         "        mlflow.log_metric('loss', 1.0 / (s + 1), step=s)\n"
         "    mlflow.log_text('hello', 'out/hello.txt')\n")


def test_per_run_store_is_a_fast_copy_written_by_mlflow(tmp_path):
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    localstore.template(cache)  # once per MLflow version: the migration
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    uri, exp_id, run_id = localstore.create(tmp_path / "run1", cache)
    per_run = time.perf_counter() - t0
    assert len(list(cache.glob("*.db"))) == 1
    assert per_run < made and per_run < 2.0, (per_run, made)

    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, MLFLOW_RUN_ID=run_id, MLFLOW_EXPERIMENT_ID=exp_id)
    env.pop("MLFLOW_ALLOW_FILE_STORE", None)
    p = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.1"} and run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]
    assert (tmp_path / "run1" / "artifacts" / run_id / "artifacts" / "out" / "hello.txt").read_text() == "hello"

    # a second run's store is its own copy: nothing of the first run in it
    uri2, _exp2, run2 = localstore.create(tmp_path / "run2", cache)
    assert [r.info.run_id for r in MlflowClient(tracking_uri=uri2).search_runs([_exp2])] == [run2]


def test_reader_returns_each_point_once_through_the_client(tmp_path):
    uri, exp_id, run_id = localstore.create(tmp_path / "run", tmp_path / "cache")
    writer = MlflowClient(tracking_uri=uri)
    reader = localstore.SqlLocalRun(uri, run_id)
    writer.log_param(run_id, "lr", "0.1")
    writer.set_tag(run_id, "user.tag", "x")
    for s in range(3):
        writer.log_metric(run_id, "loss", 1.0 / (s + 1), step=s, timestamp=1000 + s)
    first = reader.new_points()
    assert [(m.step, m.value) for m in first["loss"]] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]
    assert reader.new_points() == {}  # nothing new: nothing again
    writer.log_metric(run_id, "loss", 0.25, step=3, timestamp=1003)
    writer.log_metric(run_id, "acc", 0.9, step=3, timestamp=1003)
    second = reader.new_points()
    assert {k: [(m.step, m.value) for m in v] for k, v in second.items()} == {"loss": [(3, 0.25)], "acc": [(3, 0.9)]}
    assert reader.params() == {"lr": "0.1"} and reader.tags() == {"user.tag": "x"}
    (tmp_path / "f.txt").write_text("abc")
    writer.log_artifact(run_id, str(tmp_path / "f.txt"), artifact_path="out")
    arts = reader.artifacts()
    assert list(arts) == ["out/f.txt"] and arts["out/f.txt"][0] == 3


def test_reader_reads_only_new_points_and_a_full_read_finds_a_backdated_one(tmp_path):
    """A mirror polling a long run reads each point once (not the whole history every second); a point
    logged with an older timestamp than one read already is found by the full read the replay ends with."""
    from mlflow.entities import Metric

    uri, _exp, run_id = localstore.create(tmp_path / "run", tmp_path / "cache")
    writer = MlflowClient(tracking_uri=uri)
    writer.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), 10_000 + s, s) for s in range(1000)])
    reader = localstore.SqlLocalRun(uri, run_id)
    assert len(reader.new_points()["loss"]) == 1000
    rows = []
    history = reader._sql.get_metric_history
    reader._sql.get_metric_history = lambda *a, **kw: rows.append(len(got := history(*a, **kw))) or got
    writer.log_batch(run_id, metrics=[Metric("loss", 0.5, 20_000 + s, 1000 + s) for s in range(5)])
    assert [m.step for m in reader.new_points()["loss"]] == [1000, 1001, 1002, 1003, 1004]
    assert rows == [5]  # the five new points read, not the 1,005 of the history
    assert reader.new_points() == {} and rows[-1] == 0

    writer.log_metric(run_id, "loss", 9.0, step=7, timestamp=5)  # back-dated: before every point read
    assert reader.new_points() == {}  # the incremental read cannot see it (it sorts before the offset) ...
    assert [(m.step, m.value) for m in reader.new_points(full=True)["loss"]] == [(7, 9.0)]  # ... the full read does
    assert reader.new_points(full=True) == {}  # and only once
