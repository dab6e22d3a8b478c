"""Inside a repro run an ordinary MLflow project sees what it sees under plain `mlflow run` against the
same server: a tracking URI that is not a `file:` one, and reads (experiment by name, search_runs) that
reach the real server, falling back to the run's local store, said once, while the server is away."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlflow.tracking import MlflowClient

from repro_mlflow.runtime import offline
from repro_mlflow.submit.offline import replay_bundle
from tests.conftest import BIN
from tests.helpers import run_offline_worker, wait_terminal

# the project's reads, in its run (tests/local/test_ordinary_project.py puts them in test_registry's project)
READS = """
    # as MLflow's own tutorial project does: skip the registry on a file store
    mlflow.log_param("scheme_is_file", urlparse(mlflow.get_tracking_uri()).scheme == "file")
    exp = mlflow.get_experiment_by_name("outside")
    runs = mlflow.MlflowClient().search_runs([exp.experiment_id], "tags.made = 'outside'") if exp else []
    mlflow.log_param("found", ",".join(sorted(r.data.params["seed"] for r in runs)) or "none")
    mlflow.log_param("own_experiment_runs", len(mlflow.search_runs(output_format="list")))
    mlflow.log_metric("m", 1.0)
"""
MAIN = "from urllib.parse import urlparse\nimport mlflow\n\nwith mlflow.start_run():" + READS


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text("name: ordinary\nentry_points:\n  main:\n    command: python main.py\n")
    (proj / "main.py").write_text(MAIN)
    return proj


def _outside(client: MlflowClient) -> None:
    exp = client.create_experiment("outside")
    client.log_param(client.create_run(exp, tags={"made": "outside"}).info.run_id, "seed", "7")



def test_an_ordinary_project_sees_the_server(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "repro"))
    client = MlflowClient(mlflow_server.uri)
    _outside(client)
    proj = _project(tmp_path)
    p = subprocess.run([str(BIN / "mlflow"), "run", ".", "--backend", "repro-local", "--env-manager", "local",
                        "--experiment-name", "inside"], cwd=proj, env=dict(os.environ), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    [rid] = [r.info.run_id for r in client.search_runs([client.get_experiment_by_name("inside").experiment_id])]
    [run] = wait_terminal([rid], timeout=240)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    # the branch plain `mlflow run` takes, the run made outside found on the server, its own run in its experiment
    assert run.data.params == {"scheme_is_file": "False", "found": "7", "own_experiment_runs": "1"}
    assert run.data.metrics["m"] == 1.0


def test_reads_fall_back_to_the_local_run_while_the_server_is_away(mlflow_server, tmp_path, monkeypatch):
    client = MlflowClient(mlflow_server.uri)
    _outside(client)
    rid = client.create_run(client.create_experiment("inside")).info.run_id
    mlflow_server.stop()
    off = tmp_path / "off"
    p = run_offline_worker(mlflow_server.uri, rid, off, _project(tmp_path) / "main.py", tmp_path / "repro")
    assert p.returncode == 0, p.stderr[-3000:]
    said = [ln for ln in p.stderr.splitlines() if "reads answer from this run's local store" in ln]
    assert len(said) == 1, p.stderr[-3000:]  # said once, for three reads
    mlflow_server.restart()
    assert replay_bundle(client, rid, off) is True
    run = client.get_run(rid)
    assert run.info.status == "FINISHED" and offline.read_bundle(off)["status"] == "FINISHED"
    # what the local store knew: not a file store, nothing found outside, its own run
    assert run.data.params == {"scheme_is_file": "False", "found": "none", "own_experiment_runs": "1"}
