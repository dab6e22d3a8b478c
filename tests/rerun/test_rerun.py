"""`repro rerun RUN --repeat 2` and `--on slurm` of a real `mlflow run . --backend repro-local` run; refusal without a source."""

from __future__ import annotations

import subprocess

from mlflow.tracking import MlflowClient

from tests.conftest import BIN
from tests.helpers import all_runs, wait_terminal
from tests.local.test_mlflow_run_local import mlflow_run, run_id_of


def repro(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "repro"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_rerun_twice_on_its_own_backend_and_on_slurm_all_finished_same_config(slurm_cluster, cli_env):
    cli_env = dict(cli_env, SLURM_CONF=str(slurm_cluster.conf))
    proc = mlflow_run(cli_env, "-e", "mnist_convnet", "-P", "epochs=1", "-P", "data=bundled")
    assert proc.returncode == 0, proc.stderr
    orig = run_id_of(proc)
    [run] = wait_terminal([orig], timeout=240)
    assert run.info.status == "FINISHED"
    out = repro(cli_env, "rerun", orig, "--repeat", "2")
    assert out.returncode == 0, out.stderr
    out = repro(cli_env, "rerun", orig, "--on", "slurm")  # the real one-node Slurm
    assert out.returncode == 0, out.stderr
    reruns = [r for r in all_runs() if r.data.tags.get("repro.rerun_of") == orig]
    assert sorted(r.data.tags["repro.backend"] for r in reruns) == ["local", "local", "slurm"]
    assert run.data.tags["repro.config_hash"]  # a plain `mlflow run` records its config hash too
    for r in reruns:
        assert r.info.status == "FINISHED", r.data.tags.get("repro.status_reason")
        assert r.data.params == run.data.params
        assert r.data.tags["repro.config_hash"] == run.data.tags["repro.config_hash"]
        assert r.data.tags["mlflow.project.entryPoint"] == "mnist_convnet"
    verdict = repro(cli_env, "analyze", "--rerun-of", orig, "--no-report", "--primary", "test_accuracy")
    assert verdict.returncode == 0, verdict.stderr
    [line] = [ln for ln in verdict.stdout.splitlines() if ln.startswith(f"rerun of {orig}:")]
    assert "3 rerun(s)" in line
    same = len({r.data.metrics["test_accuracy"] for r in [run, *reruns]}) == 1
    assert ("bit-identical to the original" if same else "differs from the original") in line


def test_run_without_source_is_refused_in_one_line_nothing_created(cli_env):
    client = MlflowClient()
    exp = client.get_experiment_by_name("Default") or client.get_experiment(client.create_experiment("Default"))
    rid = client.create_run(exp.experiment_id, tags={"mlflow.project.entryPoint": "main"}).info.run_id
    client.set_terminated(rid)
    before = len(all_runs())
    out = repro(cli_env, "rerun", rid, "--repeat", "2")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no recoverable project source" in lines[0], out.stderr
    assert len(all_runs()) == before
