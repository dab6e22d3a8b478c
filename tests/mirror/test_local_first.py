"""What the entry point sees under the runtime: its own run (the real run's id) in a local store (model
logging and loading included), the real server through REPRO_TRACKING_URI, the registry on the real
server; and the local store is MLflow's SQLite store, made without MLFLOW_ALLOW_FILE_STORE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from repro_mlflow import tags as T
from repro_mlflow.submit.offline import offline_client
from repro_mlflow.runtime import offline

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import os, mlflow
from mlflow.tracking import MlflowClient

class Length(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return [len(model_input)]

with mlflow.start_run() as run:
    import numpy as np
    mlflow.log_input(mlflow.data.from_numpy(np.arange(6).reshape(3, 2), name="tiny"), context="training")
    assert run.info.run_id == os.environ["REPRO_RUN_ID"]  # the real run's id (logged into the local store)
    info = mlflow.pyfunc.log_model(name="model", python_model=Length())
    assert mlflow.pyfunc.load_model(info.model_uri).predict(["a", "b"]) == [2]
    assert mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(["a"]) == [1]
    assert not mlflow.get_tracking_uri().startswith("file:")  # the local store is MLflow's SQLite store
    real = MlflowClient(os.environ["REPRO_TRACKING_URI"])  # the real server, asked explicitly
    assert real.get_run(os.environ["REPRO_RUN_ID"]).data.tags["who"] == "submit side"
    # the registry is the real server's: the version is registered there (after the model's files)
    assert str(mlflow.register_model(info.model_uri, "inside").version) == "1"
    real_registry = MlflowClient(registry_uri=os.environ["REPRO_TRACKING_URI"])
    real_registry.create_registered_model("reached")
"""


def test_entry_point_logs_locally_and_reaches_the_real_server_explicitly(tracking, tmp_path):
    client = MlflowClient()
    rid = client.create_run(client.create_experiment("lf"), tags={"who": "submit side"}).info.run_id
    env = dict(os.environ, PYTHONPATH=str(ROOT), REPRO_OFFLINE_DIR=str(tmp_path / "off"), MLFLOW_TRACKING_URI=tracking)
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--run-id", rid, "--", sys.executable, "-c", CHILD],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert client.get_run(rid).info.status == "FINISHED"
    assert offline.read_bundle(tmp_path / "off")["mirrored"] is True
    run = client.get_run(rid)
    [d] = run.inputs.dataset_inputs  # the dataset input reached the real run, once
    assert d.dataset.name == "tiny" and [(t.key, t.value) for t in d.tags] == [("mlflow.data.context", "training")]
    # the logged model reached the server as itself (nothing said skipped), its local id as its tag
    [lm] = client.search_logged_models([run.info.experiment_id])
    assert (lm.name, lm.source_run_id, str(lm.status).rsplit(".", 1)[-1]) == ("model", rid, "READY")
    assert lm.tags[T.LOCAL_MODEL_ID].startswith("m-") and T.REPLAY_SKIPPED not in run.data.tags
    assert mlflow.pyfunc.load_model(f"models:/{lm.model_id}").predict(["x"]) == [1]
    # the logged model reached the real run as its artifacts: it loads from the submit side
    model = mlflow.pyfunc.load_model(f"runs:/{rid}/model")
    assert model.predict(["x", "y", "z"]) == [3]
    assert sorted(m.name for m in client.search_registered_models()) == ["inside", "reached"]
    assert mlflow.pyfunc.load_model("models:/inside/1").predict(["x"]) == [1]


def test_local_store_is_an_mlflow_sqlite_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri, run_id = offline.start(tmp_path / "b", "REAL", "http://example.invalid")
    assert uri.startswith("sqlite:///") and not (tmp_path / "b" / "mlruns").exists()
    c = offline_client(tmp_path / "b")
    run = c.get_run(run_id)
    assert run.info.status == "RUNNING" and run.info.experiment_id == offline.read_bundle(tmp_path / "b")["experiment_id"]
    c.log_metric(run_id, "m", 1.5, step=2)
    c.set_terminated(run_id, "FINISHED")
    assert [(m.value, m.step) for m in c.get_metric_history(run_id, "m")] == [(1.5, 2)]
    assert offline.read_bundle(tmp_path / "b")["run_id"] == "REAL"
    # a requeued job logs on into the same local run
    assert offline.start(tmp_path / "b", "REAL", None) == (uri, run_id)
