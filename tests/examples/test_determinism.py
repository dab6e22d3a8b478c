"""What each determinism factor sets before a framework import, checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.examples.examples_runs import ROOT

PROBE = """
import json, os, sys
from repro_mlflow import determinism
p = __import__("argparse").ArgumentParser(); determinism.add_arguments(p)
tags = determinism.prepare(determinism.Settings.from_args(p.parse_args(sys.argv[1:])))
env = {k: os.environ.get(k) for k in ("KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS", "CUBLAS_WORKSPACE_CONFIG",
                                      "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "NVIDIA_TF32_OVERRIDE")}
print(json.dumps({"tags": tags, "env": env, "imported": [m for m in ("keras", "tensorflow", "torch", "jax") if m in sys.modules]}))
"""


def configure(*args: str) -> dict:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_tensorflow_factors_are_set_before_import():
    r = configure("--keras_backend", "tensorflow", "--onednn", "false", "--threads", "2", "--tf32", "false")
    assert r["imported"] == []  # prepare imports no framework
    assert r["env"]["KERAS_BACKEND"] == "tensorflow" and r["env"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert r["env"]["OMP_NUM_THREADS"] == "2" and r["env"]["TF_NUM_INTRAOP_THREADS"] == "2"
    assert r["env"]["NVIDIA_TF32_OVERRIDE"] == "0"
    assert r["tags"]["repro.det.onednn"] == "false" and r["tags"]["repro.det.threads"] == "2"
    assert r["tags"]["repro.det.env.tf_enable_onednn_opts"] == "0"


def test_jax_gets_deterministic_xla_flags():
    r = configure("--keras_backend", "jax", "--threads", "1")
    flags = r["env"]["XLA_FLAGS"].split()
    assert "--xla_gpu_deterministic_ops=true" in flags
    assert not any("xla_cpu_multi_thread_eigen" in f for f in flags)  # changes neither threads nor bits: not set
    assert not any("intra_op_parallelism_threads" in f for f in flags)  # not an XLA flag: XLA would abort on it
    assert r["tags"]["repro.det.env.xla_flags"] == r["env"]["XLA_FLAGS"]
    assert r["env"]["TF_ENABLE_ONEDNN_OPTS"] is None and r["tags"]["repro.det.onednn"] == "n/a"
    off = configure("--keras_backend", "jax", "--op_determinism", "false")
    assert off["env"]["XLA_FLAGS"] is None


def test_torch_gets_cublas_workspace_only_with_op_determinism():
    on = configure("--keras_backend", "torch")
    assert on["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert on["tags"]["repro.det.env.cublas_workspace_config"] == ":4096:8"
    off = configure("--keras_backend", "torch", "--op_determinism", "false")
    assert off["env"]["CUBLAS_WORKSPACE_CONFIG"] is None


def test_configure_refuses_to_run_after_a_framework_import():
    code = "import numpy, keras, argparse\nfrom repro_mlflow import determinism\n" \
           "p = argparse.ArgumentParser(); determinism.add_arguments(p)\n" \
           "determinism.configure(settings=determinism.Settings.from_args(p.parse_args([])))"
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                         "KERAS_BACKEND": "torch"}, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "must run before importing keras" in out.stderr


@pytest.mark.parametrize("bad", [["--keras_backend", "theano"], ["--xla", "maybe"], ["--onednn", "perhaps"]])
def test_bad_factor_values_are_refused(bad):
    out = subprocess.run([sys.executable, "-c", PROBE, *bad], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error: argument" in out.stderr and bad[1] in out.stderr
