"""Bad input: a one-line error, a non-zero exit, and nothing created in MLflow (not even the store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import echo_args, repro, sweep

CASES = [
    # Hydra's own words (the config's schema is repro_mlflow/sweep/schema.py), on one line
    (["example=mnist_convnet,nope"], "Could not find 'example/nope' (available options in 'example': "
                                     "imbalanced_classification, imdb_bilstm, mnist_convnet, nnunet_segmentation)"),
    (["hardware=moon"], "Could not find 'hardware/moon' (available options in 'hardware': ec2_c7a,"),
    (["software=tf0_1"], "Could not find 'software/tf0_1' (available options in 'software': current,"),
    (["seeds=1,2"], "Could not override 'seeds'. To append to your config use +seeds=1: Key 'seeds' not in 'SweepConf'"),
    (["threads=two"], "Error merging override threads=two: Value 'two' of type 'str' could not be converted to Integer"),
    (["threads=1,two"], "Error merging override threads=two: Value 'two' of type 'str' could not be converted to Integer"),
    (["op_determinism=maybe"], "Error merging override op_determinism=maybe: Value 'maybe' is not a valid bool"),
    (["repeat=0,x"], "Error merging override repeat=x: Value 'x' of type 'str' could not be converted to Integer"),
    (["hardware.gpu=[1]"], "Error merging override hardware.gpu=[1]: Cannot convert 'list' to string"),
    (["example.params.nepochs=2"], "Could not override 'example.params.nepochs'. To append to your config use "
                                   "+example.params.nepochs=2: Key 'nepochs' is not in struct"),
    # repro's own rules
    (["seed=1", "seed=2"], "conflicting overrides"),
    (["seed=range(0)"], "empty sweep"),
    (["threads=-1"], "parameter 'threads' must be at least 0, got -1"),
    (["example.params.epochs=-3"], "parameter 'epochs' must be at least 1, got -3"),
    (["repeat=-1"], "repeat must be a non-negative integer"),
    (["example.params.epochs=1", "example.params.nepochs=2"], "nepochs"),
    (["+hardware.gpus=1"], "hardware target local: unknown key(s) gpus (known: backend, backend_config,"),
    (["+hardware.backend_config.paralel=2"], "unknown local backend-config key(s): paralel"),
    (["software=tf2_8_gpu_image"], "the local backend does not run container images"),
    (["sweep=\"it's\""], "sweep name \"it's\": no quotes, backslashes or line breaks (MLflow's search filter cannot"),
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


@pytest.mark.parametrize("name, value", [("REPRO_MIRROR_INTERVAL", "abc"), ("REPRO_MIRROR_GRACE", "-1")])
def test_a_runtime_variable_that_is_no_number_is_refused_at_submit(env, tracking, name, value):
    p = sweep(echo_args("--detach"), dict(env, **{name: value}), check=False)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"repro-sweep: error: {name}={value}: must be a number of seconds"), lines[0]
    assert not Path(tracking[len("sqlite:///"):]).exists()


def test_status_and_sync_of_a_sweep_name_mlflow_cannot_quote_is_one_line(env, tracking):
    for cmd in ("status", "sync"):
        p = repro([cmd, "--sweep", "it's"], env)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode != 0 and len(lines) == 1, p.stderr
        assert lines[0] == (f"repro {cmd}: error: no such sweep: \"it's\" cannot be quoted in an MLflow search filter "
                            "(no quotes, backslashes or line breaks)"), lines[0]
        assert not Path(tracking[len("sqlite:///"):]).exists()
