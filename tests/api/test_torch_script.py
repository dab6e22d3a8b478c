"""A plain PyTorch script with determinism.configure and evidence.log_evidence, judged by repro analyze."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import BIN
from tests.helpers import wait_terminal

pytest.importorskip("torch")
PROJECT = Path(__file__).parent / "torch_project"


def submit(env: dict, experiment: str, backend_env: dict | None = None) -> str:
    cmd = [str(BIN / "mlflow"), "run", str(PROJECT), "-e", "main", "-P", "threads=1", "--experiment-name", experiment,
           "--backend", "repro-local"]
    if backend_env:
        cmd += ["--backend-config", json.dumps({"env": backend_env})]
    p = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    m = re.search(r"repro: run ([0-9a-f]{32}) submitted", p.stderr)
    assert p.returncode == 0 and m, p.stderr
    return m.group(1)


def analyze(env: dict, experiment: str) -> dict:
    p = subprocess.run([str(BIN / "repro"), "analyze", "--experiment", experiment, "--json", "--no-report"],
                       env=dict(env, COLUMNS="200"), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    [example] = json.loads(p.stdout)["examples"]
    return example


def test_plain_torch_script_twice_is_repeatable_and_a_change_from_epoch_2_is_found(cli_env):
    client = MlflowClient()
    for name in ("same", "parted"):
        client.create_experiment(name)
    same = [submit(cli_env, "same") for _ in range(2)]
    parted = [submit(cli_env, "parted"), submit(cli_env, "parted", {"PERTURB_FROM_EPOCH": "2"})]
    runs = wait_terminal(same + parted, timeout=300)
    for run in runs:
        assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
        tags = run.data.tags
        assert tags["repro.det.framework"] == "torch" and tags["repro.det.threads"] == "1"
        assert tags["repro.det.torch.deterministic_algorithms"] == "true"
        assert {f"repro.digest.weights.epoch.{i}" for i in (1, 2, 3)} <= set(tags)
        assert tags["repro.digest.weights"] == tags["repro.digest.weights.epoch.3"]
        assert tags["repro.primary_metric"] == "test_accuracy" and len(tags["repro.digest.data"]) == 64
    # the artifacts repro analyze reads
    rid = same[0]
    with np.load(client.download_artifacts(rid, "repro/predictions.npz")) as z:
        assert z["probabilities"].shape == (256, 2) and z["labels"].shape == (256,)
    with np.load(client.download_artifacts(rid, "repro/weights.npz")) as z:
        assert set(z.files) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    record = json.loads(Path(client.download_artifacts(rid, "repro/digests.json")).read_text())
    assert len(record["weights_epochs"]) == 3 and record["epoch_numbering"] == "from 1"

    rep = analyze(cli_env, "same")
    assert rep["summary"]["repeatable"] == 1 and rep["summary"]["not_repeatable"] == 0
    [group] = rep["groups"]
    assert group["repeatable"] is True and group["n"] == 2 and group["n_distinct"] == 1

    par = analyze(cli_env, "parted")
    assert par["summary"]["not_repeatable"] == 1
    [div] = par["divergence"]
    assert div["first_divergent_epoch"] == 2
    [pred] = par["predictions"]
    assert pred["mean_pairwise_l2"] > 0  # from repro/weights.npz
    assert pred["mean_pairwise_churn"] is not None
