"""determinism.configure's refusals: one line that names the reason, raised before anything runs."""

from __future__ import annotations

import pytest

from repro_mlflow import determinism


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
