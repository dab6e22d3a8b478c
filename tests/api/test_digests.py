"""Each digest helper: equal digests for equal weights, a different one after one training step."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from repro_mlflow import evidence
from tests.conftest import ROOT

KERAS = """
import json, sys
import numpy as np
from repro_mlflow import determinism, evidence
determinism.configure(seed=1, framework="keras", keras_backend=sys.argv[1])
import keras
def model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
a = model(); b = model(); b.set_weights(a.get_weights())
same = evidence.digest_weights(a) == evidence.digest_weights(b)
before = evidence.digest_weights(a)
a.compile(optimizer="sgd", loss="mse")
x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32"); y = x.sum(axis=1, keepdims=True)
a.train_on_batch(x, y)
d = evidence.Digests()
a.fit(x, y, epochs=2, verbose=0, callbacks=[evidence.keras_callback(d)])
print(json.dumps({"same": same, "changed": evidence.digest_weights(a) != before,
                  "b_unchanged": evidence.digest_weights(b) == before, "epochs": d.weights_epochs,
                  "final": evidence.digest_weights(a), "backend": keras.backend.backend()}))
"""


def _python(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_keras_digest_equal_for_equal_weights_and_moves_after_a_step(backend):
    pytest.importorskip(backend)
    r = _python(KERAS, backend)
    assert r["backend"] == backend
    assert r["same"] and r["changed"] and r["b_unchanged"]
    assert len(r["epochs"]) == 2 and r["epochs"][0] != r["epochs"][1] and r["epochs"][-1] == r["final"]


def test_torch_module_and_state_dict_digest_alike_and_move_after_a_step():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    b = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    assert evidence.digest_weights(a) != evidence.digest_weights(b)  # other initial weights
    b.load_state_dict(a.state_dict())
    before = evidence.digest_weights(a)
    assert before == evidence.digest_weights(b) == evidence.digest_weights(a.state_dict())
    opt = torch.optim.SGD(a.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    loss = a(x).pow(2).mean()
    loss.backward()
    opt.step()
    assert evidence.digest_weights(a) != before and evidence.digest_weights(b) == before
    # a buffer (BatchNorm's running mean) is part of the weights too
    with torch.no_grad():
        b[1].running_mean[0] += 1e-7
    assert evidence.digest_weights(b) != before


def test_jax_pytree_digest_equal_for_equal_weights_and_moves_after_a_step():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"dense": {"w": jax.random.normal(k1, (4, 3)), "b": jnp.zeros(3)}, "out": [jax.random.normal(k2, (3,))]}
    copy = jax.tree_util.tree_map(lambda a: jnp.array(np.asarray(a)), params)
    before = evidence.digest_weights(params)
    assert before == evidence.digest_weights(copy)
    # the same values as NumPy arrays digest the same: the digest is of the bits, not the array type
    assert before == evidence.digest_weights(jax.tree_util.tree_map(np.asarray, params))

    def loss(p, x):
        return jnp.mean((jnp.tanh(x @ p["dense"]["w"] + p["dense"]["b"]) @ p["out"][0]) ** 2)

    x = jnp.ones((8, 4))
    grads = jax.grad(loss)(params, x)
    stepped = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    assert evidence.digest_weights(stepped) != before and evidence.digest_weights(params) == before


def test_numpy_digest_is_bitwise_and_ordered():
    w = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)]
    assert evidence.digest_weights(w) == evidence.digest_weights([a.copy() for a in w])
    w2 = [w[0].copy(), w[1].copy()]
    w2[1][0] = np.nextafter(w2[1][0], np.float32(2))  # one ulp
    assert evidence.digest_weights(w2) != evidence.digest_weights(w)
    assert evidence.digest_weights(w[::-1]) != evidence.digest_weights(w)
    assert evidence.digest_predictions(np.array([0.25, 0.75])) == evidence.digest_predictions(np.array([0.25, 0.75], np.float32))


def test_a_state_dict_digests_the_same_whatever_order_it_holds_its_keys_in():
    torch = pytest.importorskip("torch")
    from collections import OrderedDict

    torch.manual_seed(0)
    sd = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1)).state_dict()
    reversed_sd = OrderedDict(reversed(list(sd.items())))
    assert list(reversed_sd) != list(sd)
    assert evidence.digest_weights(reversed_sd) == evidence.digest_weights(sd)
    assert [k for k, _ in evidence.weight_arrays(reversed_sd)] == sorted(sd)
    swapped = OrderedDict(sd)  # the same names, one value reordered: another digest
    swapped["0.bias"] = sd["0.bias"].flip(0)
    assert evidence.digest_weights(swapped) != evidence.digest_weights(sd)


def test_byte_order_is_not_part_of_the_digest():
    w = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "n": np.arange(5, dtype=np.int64)}
    big = {k: a.astype(a.dtype.newbyteorder(">")) for k, a in w.items()}
    assert big["w"].tobytes() != w["w"].tobytes() and np.array_equal(big["w"], w["w"])
    assert evidence.digest_weights(big) == evidence.digest_weights(w)
    assert evidence.digest_arrays(big.values()) == evidence.digest_arrays(w.values())
    assert evidence.digest_predictions(big["w"]) == evidence.digest_predictions(w["w"])


def test_bfloat16_is_digested_as_bfloat16_not_widened():
    torch = pytest.importorskip("torch")
    x = torch.tensor([1.0, -2.5, 3.140625, 1e-3], dtype=torch.bfloat16)
    widened = x.float()  # the same values, exactly, as float32
    assert evidence.digest_weights({"w": x}) != evidence.digest_weights({"w": widened})
    assert evidence.digest_arrays([x]) != evidence.digest_arrays([widened])
    assert evidence.digest_arrays([x]) == evidence.digest_arrays([x.clone()])
    nudged = x.clone()
    nudged.view(torch.int16)[0] += 1  # one bfloat16 ulp
    assert evidence.digest_arrays([nudged]) != evidence.digest_arrays([x])
    ml_dtypes = pytest.importorskip("ml_dtypes")
    same_bits = x.view(torch.int16).numpy().view(ml_dtypes.bfloat16)  # JAX's bfloat16: the same bytes, the same name
    assert evidence.digest_arrays([same_bits]) == evidence.digest_arrays([x])
    assert evidence.digest_weights({"w": same_bits}) == evidence.digest_weights({"w": x})
    # weights.npz keeps the exact values NumPy can store
    assert evidence.weight_arrays({"w": x})[0][1].dtype == np.float32


def test_seeds_1_and_2_differ_before_training_a_late_change_names_its_epoch():
    torch = pytest.importorskip("torch")

    def run(seed: int, perturb_at: int = 0) -> evidence.Digests:
        torch.manual_seed(seed)
        model = torch.nn.Linear(4, 2)
        d = evidence.Digests(weights_initial=evidence.digest_weights(model))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.linspace(-1, 1, 32).reshape(8, 4)
        for epoch in range(1, 4):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            if epoch == perturb_at:
                with torch.no_grad():
                    model.weight[0, 0] += 1e-6
            evidence.log_epoch(model, d)
        return d

    one, two, again, late = run(1), run(2), run(1), run(1, perturb_at=2)
    assert evidence.first_divergent_epoch(one.weights_epochs, two.weights_epochs,
                                          (one.weights_initial, two.weights_initial)) == 0
    assert evidence.divergence(one, two) == "differ before training"
    assert evidence.divergence(one, late) == "epoch 2" and evidence.divergence(one, again) == "never"
    assert one.to_tags()["repro.digest.weights.epoch.0"] == one.weights_initial  # the series starts at epoch 0
    assert one.to_tags()["repro.digest.weights.epoch.0"] != two.to_tags()["repro.digest.weights.epoch.0"]
