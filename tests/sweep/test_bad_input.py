"""Bad input: a one-line error, a non-zero exit, and nothing created in MLflow (not even the store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import echo_args, sweep

CASES = [
    (["example=mnist_convnet,nope"], "unknown example 'nope'"),
    (["hardware=moon"], "unknown target 'moon'"),
    (["software=tf0_1"], "unknown software entry 'tf0_1'"),
    (["seeds=1,2"], "unknown factor or key 'seeds'"),
    (["seed=1", "seed=2"], "conflicting overrides"),
    (["seed=range(0)"], "empty sweep"),
    (["op_determinism=maybe"], "op_determinism' must be true or false"),
    (["threads=two"], "threads' must be an integer"),
    (["threads=-1"], "parameter 'threads' must be at least 0, got -1"),
    (["example.params.epochs=-3"], "parameter 'epochs' must be at least 1, got -3"),
    (["repeat=-1"], "repeat must be a non-negative integer"),
    (["example.params.epochs=1", "example.params.nepochs=2"], "nepochs"),
    (["+hardware.backend_config.paralel=2"], "unknown local backend-config key(s): paralel"),
    (["software=tf2_8_gpu_image"], "the local backend does not run container images"),
    (["params.epochz=1"], "params.epochz is a parameter of no entry point of this sweep (mnist_convnet takes seed,"),
    (["example=mnist_convnet,imdb_bilstm", "params.epochz=1"], "params.epochz is a parameter of no entry point"),
    (["keras_backend=tensorflow", "xla=true", "op_determinism=true"],
     "mnist_convnet: xla=true with op_determinism=true cannot be honoured on TensorFlow: Keras turns XLA off"),
    (["hardware=osg_a100", "keras_backend=jax", "op_determinism=true"],
     "mnist_convnet: op_determinism=true with JAX on a GPU cannot run this model: XLA refuses MaxPool's gradient"),
]


@pytest.mark.parametrize("args,message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_and_creates_nothing(args, message, env, tracking):
    p = sweep([*args, "--detach"], env, check=False)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0
    assert len(lines) == 1, p.stderr
    assert message in lines[0] and lines[0].startswith("repro-sweep: error:"), lines[0]
    assert not Path(tracking[len("sqlite:///"):]).exists(), "the tracking store was created"


def test_conflicting_sweep_level_settings_in_an_app_config(env, tracking):
    # Two experiments in one sweep cannot be one sweep: refused before MLflow is touched.
    p = sweep(echo_args("experiment=a,b", "--detach"), env, check=False)
    assert p.returncode != 0
    assert "conflicting overrides: one sweep needs one experiment" in p.stderr
    assert not Path(tracking[len("sqlite:///"):]).exists()


def test_a_pin_that_cannot_be_installed_is_one_line_and_creates_nothing(env, tracking, tmp_path):
    conf = tmp_path / "conf" / "software"
    conf.mkdir(parents=True)
    (conf / "broken.yaml").write_text("name: broken\npins: [tensorflow-cpu==0.0.1]\nimage: null\n")
    env = dict(env, REPRO_ENV_CACHE=str(tmp_path / "envs"))
    p = sweep(["--config-dir", str(tmp_path / "conf"), "software=broken", "--detach"], env, check=False, timeout=600)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("building")]
    assert p.returncode != 0
    assert lines[-1].startswith("repro-sweep: error: software 'broken': could not install tensorflow-cpu==0.0.1"), p.stderr
    assert not Path(tracking[len("sqlite:///"):]).exists()
