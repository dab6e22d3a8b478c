"""The walking skeleton through the real CLI: `mlflow run ... --backend repro-local`."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import BIN, ROOT
from tests.helpers import all_runs, wait_terminal


def mlflow_run(env: dict, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlflow"), "run", ".", *args, "--backend", "repro-local"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def run_id_of(proc: subprocess.CompletedProcess) -> str:
    m = re.search(r"repro: run ([0-9a-f]{32}) submitted", proc.stderr)
    assert m, proc.stderr
    return m.group(1)


def cpuinfo_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    pytest.skip("no 'model name' in /proc/cpuinfo on this machine")


def test_mnist_on_bundled_data_finishes_with_true_fingerprint(cli_env):
    proc = mlflow_run(cli_env, "-e", "mnist_convnet", "-P", "epochs=2", "-P", "data=bundled")
    assert proc.returncode == 0, proc.stderr
    [run] = wait_terminal([run_id_of(proc)], timeout=240)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    assert run.data.metrics["test_accuracy"] > 0.85
    assert run.data.tags["repro.hw.cpu.model"] == cpuinfo_model()
    assert run.data.tags["repro.backend"] == "local"
    assert run.data.tags["mlflow.project.backend"] == "repro-local"
    assert len(run.data.tags["repro.digest.weights"]) == 64
    # per-epoch metrics are logged with their steps
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1]
    # the runtime attaches the output log right after the command exits (the entry point may end
    # the run FINISHED itself a moment earlier)
    deadline = time.monotonic() + 30
    while True:
        artifacts = {f.path for f in MlflowClient().list_artifacts(run.info.run_id, "repro")}
        if "repro/output.log" in artifacts or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"repro/fingerprint.json", "repro/output.log"} <= artifacts


@pytest.mark.parametrize("args, message", [
    (["-P", "data=nope"], "parameter 'data' must be one of keras, bundled"),
    (["-P", "seed=1.5"], "parameter 'seed' must be an integer"),
    (["-P", "epochs=-3"], "parameter 'epochs' must be at least 1, got -3"),
    (["-P", "threads=-1"], "parameter 'threads' must be at least 0, got -1"),
    (["--backend-config", '{"paralel": 2}'], "unknown local backend-config key(s): paralel"),
    (["-e", "no_such_entry"], "unknown entry point 'no_such_entry'"),
])
def test_bad_input_is_one_line_error_and_leaves_no_run(cli_env, args, message):
    if "-e" not in args:
        args = ["-e", "mnist_convnet", *args]
    proc = mlflow_run(cli_env, *args)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert all_runs() == []
