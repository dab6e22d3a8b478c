"""determinism.configure's refusals: one line that names the reason, raised before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repro_mlflow import determinism
from tests.conftest import ROOT


@pytest.mark.parametrize("kw", [dict(framework="tensorflow", xla="true"),
                                dict(framework="keras", keras_backend="tensorflow", xla="true")])
def test_tensorflow_xla_with_op_determinism_is_refused(kw):
    with pytest.raises(determinism.DeterminismError) as e:
        determinism.configure(seed=1, op_determinism=True, **kw)
    assert "Keras turns XLA off when op determinism is on" in str(e.value) and "\n" not in str(e.value)


def test_jax_op_determinism_on_gpu_is_refused_for_max_pool_only():
    p = {"keras_backend": "jax", "op_determinism": "true", "xla": "auto"}
    assert "select-and-scatter" in determinism.refusal(p, gpu=True, ops=["max_pool"])
    assert determinism.refusal(p, gpu=False, ops=["max_pool"]) is None
    assert determinism.refusal(p, gpu=True, ops=[]) is None
    assert determinism.refusal({**p, "op_determinism": "false"}, gpu=True, ops=["max_pool"]) is None


@pytest.mark.parametrize("kw, message", [(dict(threads=-1), "threads must be 0"), (dict(framework="theano"), "unknown framework"),
                                         (dict(framework="keras"), "keras_backend must be one of"),
                                         (dict(xla="maybe"), "xla must be one of")])
def test_bad_settings_are_one_line_errors(kw, message):
    with pytest.raises(determinism.DeterminismError, match=message):
        determinism.Settings(**kw)


def _fresh(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter (nothing imported yet, no state shared with the tests)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})


def _error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0, out.stdout
    return out.stderr.strip().splitlines()[-1]


def test_configure_without_a_framework_imported_refuses_rather_than_falling_back_to_numpy():
    last = _error(_fresh("from repro_mlflow import determinism, evidence\ndeterminism.configure(seed=123, threads=1)"))
    assert last.endswith("configure() needs framework=: none of torch, tensorflow, jax is imported "
                         "(choose from: keras, tensorflow, torch, jax, numpy)"), last


def test_configure_with_two_frameworks_imported_refuses_naming_them():
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    last = _error(_fresh("import torch, jax\nfrom repro_mlflow import determinism\ndeterminism.configure(seed=1)"))
    assert "configure() needs framework=: torch and jax are imported" in last, last


def test_configure_with_torch_imported_seeds_torch_and_leaves_its_tf32_alone():
    pytest.importorskip("torch")
    out = _fresh("import json, torch\nfrom repro_mlflow import determinism\n"
                 "before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32\n"
                 "tags = determinism.configure(seed=123)\n"
                 "print(json.dumps({'tags': tags, 'before': before, 'draw': torch.rand(1).item(),"
                 " 'after': [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]}))")
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    torch = __import__("torch")
    assert r["draw"] == torch.rand(1, generator=torch.Generator().manual_seed(123)).item()  # torch seeded, not numpy
    assert r["tags"]["repro.det.framework"] == "torch" and r["tags"]["repro.det.torch.deterministic_algorithms"] == "true"
    assert r["after"] == list(r["before"])  # tf32 unset: torch's own (matmul off, cuDNN on), not switched on
    assert r["tags"]["repro.det.tf32"] == "default"
    assert r["tags"]["repro.det.torch.matmul_tf32"] == str(r["before"][0]).lower()
    assert r["tags"]["repro.det.torch.cudnn_tf32"] == str(r["before"][1]).lower()


def test_tf32_asked_is_set_and_read_back():
    pytest.importorskip("torch")
    out = _fresh("import json\nfrom repro_mlflow import determinism\n"
                 "print(json.dumps(determinism.configure(seed=1, framework='torch', tf32=True)))")
    assert out.returncode == 0, out.stderr[-2000:]
    tags = json.loads(out.stdout.strip().splitlines()[-1])
    assert tags["repro.det.tf32"] == "true" and tags["repro.det.torch.matmul_tf32"] == "true"
    assert tags["repro.det.torch.cudnn_tf32"] == "true"


@pytest.mark.parametrize("kw, message", [
    (dict(framework="torch", xla="true"), "xla=true cannot be honoured with framework=torch: PyTorch runs eagerly"),
    (dict(framework="jax", xla="false"), "xla=false cannot be honoured with framework=jax: JAX always compiles with XLA"),
    (dict(framework="numpy", xla="true"), "xla=true cannot be honoured with framework=numpy: NumPy has no XLA"),
    (dict(framework="numpy", tf32=False), "tf32=false cannot be honoured with framework=numpy: NumPy has no TF32"),
])
def test_combinations_a_framework_would_ignore_are_refused(kw, message):
    with pytest.raises(determinism.DeterminismError) as e:
        determinism.configure(seed=1, **kw)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize("kw", [dict(framework="keras", keras_backend="torch", xla="true"),  # Keras compiles it
                                dict(framework="keras", keras_backend="jax", xla="false"),  # Keras runs it eagerly
                                dict(framework="jax", xla="true"), dict(framework="torch", xla="false")])
def test_combinations_a_framework_honours_are_accepted(kw):
    assert determinism.refusal({"op_determinism": "true", **kw}, gpu=False) is None
    determinism.Settings(**kw)
