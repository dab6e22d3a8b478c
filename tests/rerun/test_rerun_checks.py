"""`repro rerun` re-creates what the original ran (project files, declared env, software) or says in one
line what it cannot: an outside python_env.yaml project rerun in its rebuilt env; a changed project, an unknown target, a target that cannot run the
original's interpreter: refused before anything is created."""

from __future__ import annotations

import subprocess

from tests.api.test_project_env import mlflow_run, run_id_of, shown
from tests.conftest import BIN
from tests.helpers import all_runs, wait_terminal


def repro(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "repro"), *args], env=env, capture_output=True, text=True, timeout=300)


def reruns_of(rid: str) -> list:
    return [r for r in all_runs() if r.data.tags.get("repro.rerun_of") == rid]


def test_python_env_project_rerun_in_its_rebuilt_env(cli_env, own_project, env_cache):
    env = dict(cli_env, REPRO_ENV_CACHE=str(env_cache))
    orig = run_id_of(mlflow_run(env, own_project, "--backend", "repro-local"))
    [run] = wait_terminal([orig], timeout=180)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    assert run.data.tags["repro.config_hash"] and run.data.tags["repro.project.digest"]
    (own_project / "checkpoint.bin").write_bytes(b"an output the run left in its project")  # not a change
    out = repro(env, "rerun", orig)
    assert out.returncode == 0, out.stderr
    runs = reruns_of(orig)
    assert len(runs) == 1
    for r in runs:
        assert r.info.status == "FINISHED", r.data.tags.get("repro.status_reason")
        assert r.data.tags["repro.config_hash"] == run.data.tags["repro.config_hash"]
        assert r.data.tags["repro.project.digest"]  # of what it shipped: the project and the output left beside it
        assert r.data.tags["repro.rerun.software"] == "same"
        assert shown(r)["prefix"] == shown(run)["prefix"]  # the project's declared env, rebuilt (found by content)
        assert shown(r)["pyjokes"]


def test_what_cannot_be_recreated_is_refused_in_one_line_nothing_created(cli_env, tmp_path):
    proj = tmp_path / "tiny"
    proj.mkdir()
    (proj / "MLproject").write_text('name: tiny\nentry_points:\n  main:\n    command: "python train.py"\n')
    (proj / "train.py").write_text("import mlflow\nmlflow.log_metric('acc', 0.5)\n")
    orig = run_id_of(mlflow_run(cli_env, proj, "--backend", "repro-local", "--env-manager", "local"))
    [run] = wait_terminal([orig], timeout=120)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    before = len(all_runs())

    def refused(*args: str, says: str) -> None:
        out = repro(cli_env, "rerun", orig, *args)
        lines = out.stderr.strip().splitlines()
        assert out.returncode != 0 and len(lines) == 1 and says in lines[0], out.stderr
        assert len(all_runs()) == before

    refused("--on", "nosuch", says="unknown target 'nosuch'")
    # an OSPool execute point cannot run this machine's interpreter
    refused("--on", "osg_cpu", says="--allow-different-software")
    (proj / "train.py").write_text("import mlflow\nmlflow.log_metric('acc', 0.6)\n")
    refused(says="changed since the run (train.py)")
