"""Bad factor values are refused by `mlflow run --backend repro-local` before any run exists;
a bad data file fails the run with a one-line reason."""

from __future__ import annotations

import subprocess

import pytest
from tests.examples.examples_runs import ROOT, finished, submit, wait


def runs_in_store() -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


@pytest.mark.parametrize("entry_point, param, message", [
    ("imdb_bilstm", "keras_backend=theano", "must be one of tensorflow, jax, torch"),
    ("mnist_convnet", "threads=two", "must be an integer"),
    ("imbalanced_classification", "onednn=maybe", "must be true or false"),
    ("imbalanced_classification", "xla=yes", "must be one of auto, true, false"),
])
def test_bad_factor_refused_before_a_run_exists(examples_env, tracking, entry_point, param, message):
    out = subprocess.run(["mlflow", "run", str(ROOT), "-e", entry_point, "-P", param, "--backend", "repro-local"],
                         env=examples_env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert message in out.stderr
    assert runs_in_store() == 0


def test_missing_creditcard_csv_fails_the_run_with_its_reason(examples_env, tracking, tmp_path):
    rid = submit(examples_env, "imbalanced_classification", data="csv", data_path=str(tmp_path / "nowhere.csv"))
    run = wait([rid], timeout_s=180)[rid]
    assert run.info.status == "FAILED"
    assert run.data.tags["repro.status_reason"] == "exit code 2"


@pytest.mark.slow
def test_fraud_from_a_kaggle_format_csv(examples_env, tracking, tmp_path):
    from projects.imbalanced_classification.data import write_csv

    path = write_csv(tmp_path / "creditcard.csv", 5000)
    rid = submit(examples_env, "imbalanced_classification", data="csv", data_path=str(path), epochs=2)
    run = wait([rid], timeout_s=300)[rid]
    finished(run)
    assert run.data.tags["repro.primary_metric"] == "val_accuracy" and "val_accuracy" in run.data.metrics
