"""The backends refuse factors that cannot be honoured: one line, before any run exists."""

from __future__ import annotations

import subprocess

import pytest
from mlflow import MlflowClient

from repro_mlflow.schedulers.local import LocalScheduler
from repro_mlflow.submit.sync import sync_runs
from tests.conftest import BIN, ROOT
from tests.helpers import all_runs, wait_terminal

CASES = [
    ("repro-local", ["-P", "xla=true"], "xla=true with op_determinism=true cannot be honoured on TensorFlow"),
    ("repro-local", ["-P", "xla=true", "-P", "keras_backend=torch"], None),  # not refused: only TensorFlow turns XLA off
    ("repro-slurm", ["-P", "keras_backend=jax", "--backend-config", '{"gpus": 1}'],
     "op_determinism=true with JAX on a GPU cannot run this model: XLA refuses MaxPool's gradient (select-and-scatter)"),
]


@pytest.mark.parametrize("backend, args, message", CASES)
def test_unhonourable_factors_are_refused_before_any_run(cli_env, backend, args, message):
    cmd = [str(BIN / "mlflow"), "run", ".", "-e", "mnist_convnet", "-P", "data=bundled", "-P", "epochs=1", *args,
           "--backend", backend]
    if message is None:  # the same command line with a combination that can be honoured is accepted
        cmd += ["--backend-config", '{"env": {"REPRO_TEST": "1"}}']
    proc = subprocess.run(cmd, cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=120)
    if message is None:
        assert proc.returncode == 0, proc.stderr
        [run] = all_runs()
        LocalScheduler().cancel([run.data.tags["repro.job_id"]])  # accepted is all this case shows: stop the job
        # a job killed before its worker takes signals cannot end its run itself: `repro sync` ends it, as a user would
        client = MlflowClient()
        [ended] = wait_terminal([run.info.run_id], timeout=120, client=client,
                                between=lambda runs: sync_runs(client, runs, quiet=True))
        assert ended.info.status == "KILLED", ended.data.tags.get("repro.failure_reason")
        return
    errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln]
    assert proc.returncode != 0 and len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert all_runs() == []


PLAIN_PROJECT = """
name: plain
entry_points:
  main:
    parameters:
      framework: {type: string, default: torch}
      xla: {type: string, default: auto}
    command: "python -c 'print({framework} {xla})'"
"""


@pytest.mark.parametrize("args, message", [
    (["-P", "framework=torch", "-P", "xla=true"], "xla=true cannot be honoured with framework=torch"),
    (["-P", "framework=jax", "-P", "xla=false"], "xla=false cannot be honoured with framework=jax"),
])
def test_a_plain_framework_project_asking_what_its_framework_ignores_is_refused(cli_env, tmp_path, args, message):
    (tmp_path / "MLproject").write_text(PLAIN_PROJECT)
    proc = subprocess.run([str(BIN / "mlflow"), "run", str(tmp_path), "-e", "main", *args, "--env-manager", "local",
                           "--backend", "repro-local"], cwd=tmp_path, env=cli_env, capture_output=True, text=True,
                          timeout=120)
    errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln]
    assert proc.returncode != 0 and len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and all_runs() == []
