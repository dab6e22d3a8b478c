"""Bad input to `mlflow run --backend repro-local`: one line, refused before any run or batch directory exists."""

from __future__ import annotations

import subprocess

import mlflow
import pytest
from mlflow.projects import ExecutionException
from mlflow.projects.utils import PROJECT_ENV_MANAGER

from repro_mlflow.mlflow_plugin.backends import local_backend

from repro_mlflow.tags import filter_literal
from tests.conftest import BIN
from tests.helpers import all_runs, wait_terminal

MLPROJECT = """
name: tiny
entry_points:
  main:
    parameters:
      a: {type: int, default: 1}
    command: "python -c 'import sys; print({a}, sys.argv[1:])'"
"""


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    return d


def _refused(project, tmp_path, tracking, message, params=None, config=None, env_manager="local"):
    """What `mlflow run` hands the backend (MLflow's AbstractBackend.run), refused before anything exists:
    not even the tracking store is opened."""
    config = dict(config or {})
    if env_manager:
        config[PROJECT_ENV_MANAGER] = env_manager
    with pytest.raises(ExecutionException) as e:
        local_backend().run(str(project), "main", params or {}, None, config, tracking, "0")
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not (tmp_path / "mlflow.db").exists()  # no store, so no run
    assert not (tmp_path / "repro").exists()  # REPRO_HOME: no batch directory


CASES = {
    "undeclared -P": ({"epochz": "1"}, None, "main: unknown parameter 'epochz' (it takes: a); to pass it on anyway, "
                                             "set \"allow_extra_params\": true in --backend-config"),
    "allow_extra_params not a bool": ({"epochz": "1"}, {"allow_extra_params": "yes"},
                                      "backend-config key 'allow_extra_params' must be true or false, got 'yes'"),
    "missing python": (None, {"python": "/nonexistent/python"},
                       "local backend config: python /nonexistent/python is not an executable file"),
    "env value not a string": (None, {"env": {"FOO": 1}}, "local backend config: env values must be strings, got FOO=1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_before_anything_exists(tracking, project, tmp_path, case):
    params, config, message = CASES[case]
    _refused(project, tmp_path, tracking, message, params, config)


@pytest.mark.parametrize("name, value, message", [
    ("REPRO_MIRROR_INTERVAL", "abc", "REPRO_MIRROR_INTERVAL=abc: must be a number of seconds between two mirror "
                                     "steps, more than 0"),
    ("REPRO_MIRROR_GRACE", "-1", "REPRO_MIRROR_GRACE=-1: must be a number of seconds to deliver the rest after the "
                                 "command ends, at least 0"),
])
def test_runtime_variables_are_checked_at_submit(tracking, project, tmp_path, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    _refused(project, tmp_path, tracking, message)
    monkeypatch.delenv(name)
    _refused(project, tmp_path, tracking, message, config={"env": {name: value}})  # or in the backend config's env


@pytest.mark.parametrize("text, message", [
    ("python: [3.11\n", "python_env.yaml cannot be read as a python env (while parsing a flow sequence"),
    ("- python: 3.11\n", "python_env.yaml cannot be read as a python env ("),
    ("pyhton: 3.11\n", "python_env.yaml cannot be read as a python env ("),
])
def test_an_unreadable_python_env_yaml_is_one_line(tracking, project, tmp_path, text, message):
    (project / "MLproject").write_text(MLPROJECT.replace("name: tiny\n", "name: tiny\npython_env: python_env.yaml\n"))
    (project / "python_env.yaml").write_text(text)
    _refused(project, tmp_path, tracking, message, env_manager=None)


CLI_CASES = {  # through `mlflow run` as a user types it: the bad inputs that reach a repro backend
    "undeclared -P": (["-P", "epochz=1", "--env-manager", "local"], None, "unknown parameter 'epochz'"),
    "missing python": (["--env-manager", "local", "--backend-config", '{"python": "/nonexistent/python"}'], None,
                       "python /nonexistent/python is not an executable file"),
    "env value not a string": (["--env-manager", "local", "--backend-config", '{"env": {"FOO": 1}}'], None,
                               "env values must be strings, got FOO=1"),
    "list-shaped python_env.yaml": ([], "- python: 3.11\n", "python_env.yaml cannot be read as a python env ("),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_input_through_mlflow_run_is_one_line(cli_env, project, tmp_path, case):
    args, python_env, message = CLI_CASES[case]
    if python_env is not None:
        (project / "MLproject").write_text(MLPROJECT.replace("name: tiny\n", "name: tiny\npython_env: python_env.yaml\n"))
        (project / "python_env.yaml").write_text(python_env)
    p = subprocess.run([str(BIN / "mlflow"), "run", str(project), "-e", "main", *args, "--backend", "repro-local"],
                       cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=120)
    errors = [ln for ln in p.stderr.splitlines() if "ERROR" in ln]
    assert p.returncode != 0 and len(errors) == 1 and message in errors[0], p.stderr
    assert "Traceback" not in p.stderr
    assert all_runs() == [] and not (tmp_path / "repro" / "batches").exists()


def test_allow_extra_params_passes_them_on_as_mlflow_does(tracking, project):
    sub = mlflow.projects.run(str(project), "main", parameters={"epochz": "1"}, backend="repro-local",
                              backend_config={"allow_extra_params": True}, env_manager="local", synchronous=False)
    [run] = wait_terminal([sub.run_id], timeout=120)
    assert run.info.status == "FINISHED" and run.data.params["epochz"] == "1"


@pytest.mark.parametrize("value", ["it's", 'say "hi"', "a\\b", "two\nlines"])
def test_a_value_mlflow_cannot_quote_is_refused_not_mangled(value):
    with pytest.raises(ValueError, match="cannot be quoted in an MLflow search filter"):
        filter_literal(value)
    assert filter_literal("sweep-1 a.b") == "'sweep-1 a.b'"
