"""One ordinary MLflow project, written for plain `mlflow run` against a real `mlflow server`, gives the same
result under repro as under plain `mlflow run --env-manager local` on the same server: the branch it takes
on the tracking URI's scheme, the run made outside it that it finds, the versions it registers (and that
load), its input dataset, its LoggedModel with a linked metric, its system metrics. repro-local builds the
project's python_env.yaml; repro-slurm (a real one-node cluster) runs it with `--env-manager local`.

The project is tests/local/test_registry.py's (registry, dataset, LoggedModel, system metrics) with
tests/local/test_invisible.py's reads (the scheme's branch, the outside run) at the start of its run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.api import test_project_env
from tests.conftest import BIN
from tests.helpers import wait_terminal
from tests.local import test_invisible, test_registry
from tests.services.mlflow_server import MlflowServer

# the project's own environment, as its author would declare it for plain `mlflow run` (built by pip
# once per session: ~70 s of the python_env test on 2 busy cores)
PYTHON_ENV = (f'python: "{sys.version_info.major}.{sys.version_info.minor}"\nbuild_dependencies: []\n'
              f"dependencies:\n  - mlflow=={mlflow.__version__}\n  - psutil\n")


env_cache = test_project_env.env_cache  # a session-scoped env cache (the fixture, by name)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[MlflowServer]:
    """One `mlflow server` (SQLite) for the module, with the run made outside the project."""
    with MlflowServer.start(tmp_path_factory.mktemp("ordinary-server")) as s:
        test_invisible._outside(MlflowClient(s.uri))
        yield s


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    proj = tmp_path_factory.mktemp("ordinary") / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text("name: ordinary\nentry_points:\n  main:\n    command: python main.py\n")
    start = "with mlflow.start_run() as run:\n"
    assert start in test_registry.MAIN
    (proj / "main.py").write_text("from urllib.parse import urlparse\n" + test_registry.MAIN.replace(
        start, start + test_invisible.READS.lstrip("\n"), 1))
    (proj / "python_env.yaml").write_text(PYTHON_ENV)
    return proj


def _fresh_registry(client: MlflowClient) -> None:
    """Each run registers into an empty registry (the project creates `made_inside`, and expects version 1)."""
    for m in client.search_registered_models():
        client.delete_registered_model(m.name)


def _mlflow_run(server: MlflowServer, project: Path, experiment: str, env: dict[str, str], *args: str):
    """`mlflow run` of the project into `experiment`; its one run, terminal, read from the server."""
    client = MlflowClient(server.uri)
    _fresh_registry(client)
    env = dict(env, MLFLOW_TRACKING_URI=server.uri, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    p = subprocess.run([str(BIN / "mlflow"), "run", ".", "--experiment-name", experiment, *args], cwd=project,
                       env=env, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    [rid] = [r.info.run_id for r in client.search_runs([client.get_experiment_by_name(experiment).experiment_id])]
    [run] = wait_terminal([rid], timeout=300, client=client)
    return client, run


def _result(client: MlflowClient, run) -> dict:
    """What a user checks on the server after the run, in terms that do not depend on its ids."""
    with pytest.MonkeyPatch.context() as mp:  # models:/ URIs load from the server
        mp.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
        mp.setenv("MLFLOW_REGISTRY_URI", client.tracking_uri)
        return _read(client, run)


def _read(client: MlflowClient, run) -> dict:
    rid = run.info.run_id
    registered = {m.name: sorted(v.version for v in client.search_model_versions(f"name = '{m.name}'")
                                 if v.run_id == rid) for m in client.search_registered_models()}
    [model] = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{rid}'")
    user_tags = {k: v for k, v in model.tags.items() if not k.startswith(("mlflow.", "repro."))}
    return {
        "status": run.info.status,
        "params": {k: v for k, v in run.data.params.items() if k != "model_id"},
        "metrics": {k: v for k, v in run.data.metrics.items() if not k.startswith("system/")},
        "system metrics": any(k.startswith("system/") for k in run.data.metrics),
        "registered": registered,
        "loads": [mlflow.pyfunc.load_model(uri).predict(["a", "b"])[0]
                  for uri in ("models:/by_log_model/1", "models:/by_register/1", f"runs:/{rid}/model")],
        "datasets": sorted((d.dataset.name, d.dataset.source_type) for d in run.inputs.dataset_inputs),
        "logged model": (model.name, str(model.status).rsplit(".", 1)[-1], model.params, user_tags,
                         sorted((m.key, m.value, m.step) for m in model.metrics),
                         [o.model_id for o in run.outputs.model_outputs] == [model.model_id],
                         mlflow.pyfunc.load_model(f"models:/{model.model_id}").predict(["x"])),
        # each version made from the logged model, linked to it both ways; its files on the model, not the run
        "versions of the model": sorted((v.name, v.version, v.source == f"models:/{model.model_id}")
                                        for m in client.search_registered_models()
                                        for v in client.search_model_versions(f"name = '{m.name}'")),
        "model's versions tag": model.tags.get("mlflow.modelVersions"),
        "run artifacts": sorted(a.path for a in client.list_artifacts(rid) if a.path != "repro"),
    }


@pytest.fixture(scope="module")
def plain(server, project) -> dict:
    """The project under plain `mlflow run --env-manager local` (no backend) on the server."""
    client, run = _mlflow_run(server, project, "plain", dict(os.environ), "--env-manager", "local")
    out = _result(client, run)
    # what plain MLflow gives (the test's own premises): not a file store, the outside run found, version 1 each
    assert out["status"] == "FINISHED" and out["params"]["scheme_is_file"] == "False", out
    assert out["params"]["found"] == "7" and out["params"]["versions"] == "1,1", out
    assert out["registered"] == {"by_log_model": ["1"], "by_register": ["1"], "made_inside": []}, out
    return out


def test_repro_local_in_the_projects_python_env_gives_what_plain_mlflow_run_gives(
        server, project, plain, env_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    env = dict(os.environ, REPRO_HOME=str(tmp_path / "repro"), REPRO_ENV_CACHE=str(env_cache))
    client, run = _mlflow_run(server, project, "local-python-env", env, "--backend", "repro-local")
    assert run.data.tags["repro.project_env.file"] == "python_env.yaml"
    assert _result(client, run) == plain, run.data.tags.get("repro.status_reason")


def test_repro_slurm_gives_what_plain_mlflow_run_gives(server, project, plain, slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    env = dict(os.environ, REPRO_HOME=str(tmp_path / "repro"), SLURM_CONF=str(slurm_cluster.conf))
    client, run = _mlflow_run(server, project, "slurm", env, "--backend", "repro-slurm", "--env-manager", "local")
    assert run.data.tags["repro.backend"] == "slurm"
    assert _result(client, run) == plain, run.data.tags.get("repro.status_reason")
