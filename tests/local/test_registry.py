"""The model registry inside a repro run works as under plain `mlflow run` against the same server
(`log_model(registered_model_name=...)`, `register_model("runs:/...")`, `create_registered_model`,
`models:/name/1`); while the server is away a registration is queued with the run's bundle and
delivered once, after the model's files, by `repro sync` (runtime/registration.py), and the registry's
other calls fail at once. The run's MLflow 3 LoggedModel (params, tags, a linked metric, its files) and
its system metrics reach the server as themselves (runtime/logged_models.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from repro_mlflow import tags as T
from repro_mlflow.submit.offline import replay_bundle
from tests.conftest import BIN
from tests.helpers import run_offline_worker, wait_terminal

MAIN = """
import os, time
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

os.environ.update(MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="0.5", MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING="1")
mlflow.enable_system_metrics_logging()

class Length(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return [len(model_input)]

with mlflow.start_run() as run:
    import numpy as np
    mlflow.log_input(mlflow.data.from_numpy(np.arange(3), name="tiny"), context="training")
    info = mlflow.pyfunc.log_model(name="model", python_model=Length(), registered_model_name="by_log_model",
                                   params={"alpha": "0.5"})
    mlflow.set_logged_model_tags(info.model_id, {"stage": "tried"})
    mlflow.log_metric("accuracy", 0.75, step=2, model_id=info.model_id)
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "by_register")
    MlflowClient().create_registered_model("made_inside")
    t0 = time.monotonic()
    try:  # a registry read: the server's answer, or (server away) a failure at once
        read = str(len(MlflowClient().search_model_versions("name = 'by_register'"))) + " version(s)"
    except MlflowException:
        read = "failed at once" if time.monotonic() - t0 < 15 else f"failed after {time.monotonic() - t0:.0f} s"
    mlflow.log_params({"versions": f"{info.registered_model_version},{mv.version}", "registry_read": read,
                       "model_id": info.model_id,
                       "by_id": mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict(["a"])[0]})
    if mv.version is not None:  # the server answered: its version loads at once
        mlflow.log_param("loaded", mlflow.pyfunc.load_model("models:/by_register/1").predict(["a", "b", "c"])[0])
    time.sleep(1.5)  # system metrics sampled
"""

def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text("name: registers\nentry_points:\n  main:\n    command: python main.py\n")
    (proj / "main.py").write_text(MAIN)
    return proj


def _registered(client: MlflowClient, rid: str) -> dict[str, list[str]]:
    """{registered model: its versions}; every version made from run `rid`, tagged with its queue entry."""
    out = {}
    for m in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{m.name}'")
        assert all(v.run_id == rid and v.tags.get(T.REGISTRATION) for v in versions), versions
        out[m.name] = sorted(v.version for v in versions)
    return out


def _delivered_model(client: MlflowClient, run) -> None:
    """The run's LoggedModel on the server, once, with its params, tags, linked metric, files, output link,
    and the registry versions made from it, as plain MLflow 3 links them; its files sent once (to the model,
    not also to the run's artifacts); the run's system metrics; nothing said skipped."""
    [m] = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    assert (m.name, str(m.status).rsplit(".", 1)[-1], m.params) == ("model", "READY", {"alpha": "0.5"})
    assert m.tags["stage"] == "tried" and m.tags[T.LOCAL_MODEL_ID] == run.data.params["model_id"]
    assert [(x.key, x.value, x.step) for x in m.metrics if x.key == "accuracy"] == [("accuracy", 0.75, 2)]
    assert len(client.get_metric_history(run.info.run_id, "accuracy")) == 1
    assert [o.model_id for o in run.outputs.model_outputs] == [m.model_id]
    assert mlflow.pyfunc.load_model(f"models:/{m.model_id}").predict(["x"]) == [1]  # from the server
    for name in ("by_log_model", "by_register"):  # made from the model (an OSS server keeps no `model_id` field)
        [v] = client.search_model_versions(f"name = '{name}'")
        assert v.source == f"models:/{m.model_id}" and v.model_id in (None, m.model_id), (name, v)
    # the versions recorded on the model: by the server (number) and by `register_model` (string), as plain MLflow's
    linked = json.loads(m.tags["mlflow.modelVersions"])
    assert all({"name": n, "version": "1"} in linked for n in ("by_log_model", "by_register")), linked
    assert "model" not in {a.path for a in client.list_artifacts(run.info.run_id)}  # the files went once
    # MLflow 3 resolves `runs:/<run>/model` to the run's model by its name (loading it so is
    # tests/local/test_ordinary_project.py's; MLflow 3.10 first retries the run's own path for minutes)
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert any(k.startswith("system/") for k in run.data.metrics), sorted(run.data.metrics)
    assert T.REPLAY_SKIPPED not in run.data.tags, run.data.tags[T.REPLAY_SKIPPED]


def test_a_project_registers_models_as_under_plain_mlflow_run(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "repro"))
    client = MlflowClient(mlflow_server.uri)
    p = subprocess.run([str(BIN / "mlflow"), "run", ".", "--backend", "repro-local", "--env-manager", "local",
                        "--experiment-name", "reg"], cwd=_project(tmp_path), env=dict(os.environ),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    [rid] = [r.info.run_id for r in client.search_runs([client.get_experiment_by_name("reg").experiment_id])]
    [run] = wait_terminal([rid], timeout=240, client=client)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    assert {k: v for k, v in run.data.params.items() if k != "model_id"} == {
        "versions": "1,1", "loaded": "3", "registry_read": "1 version(s)", "by_id": "1"}
    assert _registered(client, rid) == {"by_log_model": ["1"], "by_register": ["1"], "made_inside": []}
    model = mlflow.pyfunc.load_model("models:/by_log_model/1")  # from outside the run, on the server
    assert model.predict(["x", "y"]) == [2]
    _delivered_model(client, run)


def test_registrations_wait_for_the_server_and_arrive_once(mlflow_server, tmp_path, monkeypatch):
    client = MlflowClient(mlflow_server.uri)
    rid = client.create_run(client.create_experiment("reg")).info.run_id
    mlflow_server.stop()
    off = tmp_path / "off"
    p = run_offline_worker(mlflow_server.uri, rid, off, _project(tmp_path) / "main.py", tmp_path / "repro")
    assert p.returncode == 0, p.stderr[-3000:]  # training never failed nor waited for the registry
    assert sum("queued with the run's bundle" in ln for ln in p.stderr.splitlines()) == 1, p.stderr[-3000:]
    assert sum("model registry of" in ln for ln in p.stderr.splitlines()) == 1, p.stderr[-3000:]
    mlflow_server.restart()
    assert replay_bundle(client, rid, off) is True
    assert replay_bundle(client, rid, off) is False  # a second sync: nothing again
    run = client.get_run(rid)
    assert run.info.status == "FINISHED"
    assert {k: v for k, v in run.data.params.items() if k != "model_id"} == {
        "versions": "None,None", "registry_read": "failed at once", "by_id": "1"}
    assert _registered(client, rid) == {"by_log_model": ["1"], "by_register": ["1"], "made_inside": []}
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["tiny"]  # the dataset input, by `repro sync`, once
    # delivered after the model's files: the version loads from the server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    assert mlflow.pyfunc.load_model("models:/by_register/1").predict(["a"]) == [1]
    _delivered_model(client, run)
