"""The public API takes switches as what they say and refuses what it cannot read (never truthiness)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from repro_mlflow import determinism as det


@pytest.mark.parametrize("kw, message", [
    ({"seed": "x"}, "seed must be an integer, got 'x'"),
    ({"seed": 1.5}, "seed must be an integer, got 1.5"),
    ({"seed": None}, "seed must be an integer, got None"),
    ({"threads": "two"}, "threads must be an integer, got 'two'"),
    ({"op_determinism": "maybe"}, "op_determinism must be true or false, got 'maybe'"),
    ({"onednn": 2}, "onednn must be true or false, got 2"),
])
def test_unreadable_values_are_refused_in_one_line(kw, message):
    with pytest.raises(det.DeterminismError) as e:
        det.Settings(framework="numpy", **kw)
    assert str(e.value) == message


@pytest.mark.parametrize("text, value", [("no", False), ("false", False), ("0", False), ("False", False),
                                         ("true", True), ("1", True), ("yes", True)])
def test_a_switch_given_as_text_means_what_it_says(text, value):
    s = det.Settings(framework="numpy", op_determinism=text, onednn=text, seed="7")
    assert s.op_determinism is value and s.onednn is value and s.seed == 7
    tags = det.prepare(s)
    assert tags["repro.det.op_determinism"] == str(value).lower()


def test_log_evidence_outside_any_run_refuses_and_creates_nothing(tmp_path):
    code = ("from repro_mlflow import evidence\n"
            "try:\n    evidence.log_evidence()\nexcept evidence.EvidenceError as e:\n    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("refused: log_evidence needs an MLflow run: call it inside mlflow.start_run(), "
                                "or run the script with mlflow run")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == []
