"""The GPU study script, run here on the CPU with a small size: it drives the real runtime into an
MLflow SQLite store and writes the digests, accuracies and devices of its runs as JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.examples.examples_runs import ROOT


@pytest.mark.slow
def test_gpu_study_script_on_cpu(cli_env, tmp_path):
    out_dir = tmp_path / "out"
    # As on the GPU machine: no tracking URI, no PYTHONPATH; the script finds the repository itself.
    env = {k: v for k, v in cli_env.items() if k not in ("MLFLOW_TRACKING_URI", "REPRO_HOME", "PYTHONPATH")}
    env.update(OUT=str(out_dir), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "analysis/gpu_study/run_gpu.sh"), "--allow-cpu", "--epochs", "2", "--n_train", "800"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    study = json.loads((out_dir / "gpu_study.json").read_text())
    assert study["tracking_uri"].startswith("sqlite:") and (out_dir / "mlflow.db").is_file()
    assert study["model_on_gpu"] is False  # this machine has none
    runs = study["runs"]
    assert [(r["op_determinism"], r["repeat"]) for r in runs] == [("true", 0), ("true", 1), ("false", 0), ("false", 1)]
    for r in runs:
        assert r["status"] == "FINISHED"
        assert r["device"]["repro.sw.keras_backend"] == "torch" and r["device"]["repro.sw.device"] == "cpu"
        assert r["det"]["repro.det.op_determinism"] == r["op_determinism"]
        assert len(r["weights_epochs"]) == 2 and r["metrics"]["test_accuracy"] > 0.3  # 2 epochs on 800 digits; chance 0.1
        assert r["digests"]["repro.digest.weights"] == r["weights_epochs"][-1]
    on = study["summary"]["op_determinism=true"]
    assert on["finished"] == 2 and on["bit_identical_weights"] and on["first_divergent_epoch"] == [None]
    fingerprint = json.loads((out_dir / "fingerprint.json").read_text())
    assert fingerprint["hashes"]["hw"]
