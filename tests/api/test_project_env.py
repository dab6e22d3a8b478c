"""An MLflow project runs in the environment it declares, as `mlflow run` would (python_env.yaml, conda.yaml)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import BIN
from tests.helpers import all_runs, wait_terminal

PACKAGE = "pyjokes==0.8.3"  # tiny, pure Python, not in repro's own environment
MLPROJECT = """\
name: own
entry_points:
  main:
    command: "python show.py"
"""
SHOW = """\
import json, sys
try:
    import pyjokes
    where = pyjokes.__file__
except ImportError:
    where = None
print("SHOW " + json.dumps({"interpreter": sys.executable, "prefix": sys.prefix, "pyjokes": where}))
"""


@pytest.fixture(scope="session")
def env_cache(tmp_path_factory) -> Path:
    """One venv cache for the session: the env is built once, then found by its content."""
    return tmp_path_factory.mktemp("envs")


@pytest.fixture
def own_project(tmp_path) -> Path:
    d = tmp_path / "own"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    (d / "show.py").write_text(SHOW)
    (d / "python_env.yaml").write_text(f"python: \"{sys.version_info.major}.{sys.version_info.minor}\"\n"
                                       f"build_dependencies: []\ndependencies:\n  - {PACKAGE}\n")
    return d


def mlflow_run(env: dict, project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlflow"), "run", str(project), "-e", "main", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


def run_id_of(proc: subprocess.CompletedProcess) -> str:
    m = re.search(r"repro: run ([0-9a-f]{32}) submitted", proc.stderr)
    assert proc.returncode == 0 and m, proc.stderr
    return m.group(1)


def shown(run) -> dict:
    """What the entry point printed about its interpreter (from the job's output log)."""
    workdir = Path(run.data.tags["repro.workdir"])
    pointer = workdir / "slurm-jobdir"
    log = (Path(pointer.read_text().strip()) if pointer.is_file() else workdir) / "0" / "output.log"
    [line] = [ln for ln in log.read_text().splitlines() if ln.startswith("SHOW ")]
    return json.loads(line[5:])


def test_python_env_project_runs_finished_on_repro_local_in_a_venv_built_from_it(cli_env, own_project, env_cache):
    env = dict(cli_env, REPRO_ENV_CACHE=str(env_cache))
    [run] = wait_terminal([run_id_of(mlflow_run(env, own_project, "--backend", "repro-local"))], timeout=120)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    out = shown(run)
    assert out["interpreter"] != sys.executable and Path(out["prefix"]).parent == env_cache
    assert out["pyjokes"] and out["pyjokes"].startswith(out["prefix"])  # the declared package, from the env
    assert run.data.tags["repro.project_env.manager"] == "virtualenv" and run.data.tags["repro.project_env.file"] == "python_env.yaml"
    assert run.data.tags["repro.project_env.prefix"] == out["prefix"]
    # built once: a second run finds the env by its content
    t0 = time.monotonic()
    again = mlflow_run(env, own_project, "--backend", "repro-local")
    assert time.monotonic() - t0 < 30 and "building" not in again.stderr
    [second] = wait_terminal([run_id_of(again)], timeout=120)
    assert shown(second)["prefix"] == out["prefix"]


def test_env_manager_local_runs_in_the_current_interpreter(cli_env, own_project, env_cache):
    env = dict(cli_env, REPRO_ENV_CACHE=str(env_cache))
    [run] = wait_terminal([run_id_of(mlflow_run(env, own_project, "--backend", "repro-local", "--env-manager", "local"))],
                          timeout=120)
    assert run.info.status == "FINISHED"
    out = shown(run)
    assert Path(out["interpreter"]) == Path(sys.executable) and out["pyjokes"] is None
    assert run.data.tags["repro.project_env.manager"] == "local"
    # the backend-config key does the same
    [run] = wait_terminal([run_id_of(mlflow_run(env, own_project, "--backend", "repro-local", "--backend-config",
                                                '{"project_env": "local"}'))], timeout=120)
    assert Path(shown(run)["interpreter"]) == Path(sys.executable)


def test_python_env_project_runs_finished_on_slurm_in_a_venv_built_from_it(slurm_cluster, cli_env, own_project, env_cache):
    from repro_mlflow.submit.sync import sync_runs

    env = dict(cli_env, REPRO_ENV_CACHE=str(env_cache), SLURM_CONF=str(slurm_cluster.conf))
    rid = run_id_of(mlflow_run(env, own_project, "--backend", "repro-slurm"))
    client = MlflowClient()
    deadline = time.monotonic() + 180
    while client.get_run(rid).info.status not in ("FINISHED", "FAILED", "KILLED") and time.monotonic() < deadline:
        sync_runs(client, [client.get_run(rid)], replay=True, quiet=True)
        time.sleep(2)
    run = client.get_run(rid)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    out = shown(run)
    assert out["interpreter"] != sys.executable and Path(out["prefix"]).parent == env_cache and out["pyjokes"]
    assert run.data.tags["repro.project_env.manager"] == "virtualenv" and run.data.tags["repro.backend"] == "slurm"


def _one_error(proc: subprocess.CompletedProcess) -> str:
    errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


def test_conda_only_project_without_conda_is_one_line_and_no_run(cli_env, tmp_path):
    d = tmp_path / "condaproj"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    (d / "show.py").write_text(SHOW)
    (d / "conda.yaml").write_text("name: own\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - pyjokes\n")
    env = {k: v for k, v in cli_env.items() if k != "MLFLOW_CONDA_HOME"}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not (Path(p) / "conda").exists())
    line = _one_error(mlflow_run(env, d, "--backend", "repro-local"))
    assert "conda environment (conda.yaml) and conda is not on PATH" in line and "--env-manager local" in line
    assert all_runs() == []


def test_a_package_that_cannot_be_installed_is_one_line_and_no_run(cli_env, own_project, tmp_path):
    (own_project / "python_env.yaml").write_text("python: \"%d.%d\"\nbuild_dependencies: []\ndependencies:\n"
                                                 "  - pyjokes==0.0.0.404\n" % sys.version_info[:2])
    env = dict(cli_env, REPRO_ENV_CACHE=str(tmp_path / "envs"))
    line = _one_error(mlflow_run(env, own_project, "--backend", "repro-local"))
    assert "could not install pyjokes==0.0.0.404" in line and "--env-manager local" in line
    assert all_runs() == []


def test_a_sweep_over_the_project_runs_in_its_declared_env(cli_env, own_project, env_cache, tmp_path):
    conf = tmp_path / "conf" / "example"
    conf.mkdir(parents=True)
    (conf / "own.yaml").write_text("entry_point: main\nparams: {}\n")
    env = dict(cli_env, REPRO_ENV_CACHE=str(env_cache))
    p = subprocess.run([str(BIN / "repro-sweep"), "--config-dir", str(tmp_path / "conf"), "example=own",
                        f"project_dir={own_project}", "repeat=0,1", "sweep=own2"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "sweep own2: 2 FINISHED" in p.stderr, p.stderr
    runs = all_runs()
    assert len(runs) == 2
    for run in runs:
        out = shown(run)
        assert out["interpreter"] != sys.executable and Path(out["prefix"]).parent == env_cache and out["pyjokes"]
        assert run.data.tags["repro.project_env.manager"] == "virtualenv"
