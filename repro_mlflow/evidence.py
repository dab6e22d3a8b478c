"""Bitwise evidence for any MLflow project: digests of data, weights (initial, per epoch, final) and predictions.

`repro analyze` judges repeatability from what this module logs: the tags `repro.digest.*`, the
artifacts `repro/digests.json`, `repro/predictions.npz` and (for the L2 distance of weights)
`repro/weights.npz`. Two lines are enough in a training script::

    from repro_mlflow import evidence
    ...
    evidence.log_epoch(model)            # at the end of every epoch (Keras: callbacks=[evidence.keras_callback()])
    evidence.log_evidence(model, predictions=probs, labels=y_test, data=[x_train, y_train])

`digest_weights` takes a Keras model, a PyTorch `nn.Module` or `state_dict`, a JAX/Flax pytree
(nested dicts, lists, tuples of arrays) or NumPy arrays. No framework is imported by this module:
each is used only when the object handed in is one of its own. Epochs are numbered from 1; epoch 0
is the initial weights (before training).

Digests are canonical: the weights of a container (a state_dict, a mapping, a pytree) in the order
of their names, whatever order the container holds them in; every value in little-endian byte
order; each dtype digested as its own bytes under its own name (bfloat16 as bfloat16, never widened).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

import numpy as np


class EvidenceError(RuntimeError):
    """Evidence that cannot be logged as asked (one line, says why)."""


__all__ = ["Digests", "EvidenceError", "digest_arrays", "digest_weights", "digest_predictions", "weight_arrays", "first_divergent_epoch",
           "divergence", "keras_callback", "log_epoch", "log_evidence", "current", "reset"]

MAX_TAGS_PER_BATCH = 100  # MLflow's log_batch limit


def _to_numpy(x: Any) -> np.ndarray:
    """One array as NumPy, its values exact (torch tensors detached and moved to the CPU; torch's
    bfloat16 widened to float32, which holds every bfloat16 value: for `repro/weights.npz`, not digests)."""
    if type(x).__module__.startswith("torch"):
        t = x.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    if _from(x, "tensorflow") or _from(x, "keras"):
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    return np.asarray(x)


_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _canonical(x: Any) -> tuple[str, np.ndarray]:
    """(dtype name, array of the same bytes in little-endian order, C-contiguous): what a digest hashes.

    A standard NumPy dtype is named by its little-endian `dtype.str` (`<f4`); one NumPy has not (torch's
    or ml_dtypes' bfloat16, float8) by its own name (`bfloat16`), its bits taken as unsigned integers.
    """
    if type(x).__module__.startswith("torch"):
        import torch

        t = x.detach().cpu()
        if t.dtype == torch.bfloat16 or t.dtype.is_floating_point and t.element_size() == 1:  # no NumPy dtype
            ints = {1: torch.uint8, 2: torch.int16}[t.element_size()]
            bits = t.contiguous().view(ints).numpy().view(_BITS[t.element_size()])
            return str(t.dtype).removeprefix("torch."), np.ascontiguousarray(bits.astype(bits.dtype.newbyteorder("<")))
        a = t.numpy()
    else:
        a = _to_numpy(x)
    name = None
    if a.dtype.kind == "V" and a.dtype.names is None and a.dtype.itemsize in _BITS:  # ml_dtypes (JAX's bfloat16)
        name, a = a.dtype.name, a.view(_BITS[a.dtype.itemsize])
    if a.dtype.itemsize > 1 and a.dtype.kind in "biufcmM":
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return name or a.dtype.str, np.ascontiguousarray(a)


def digest_arrays(arrays: Iterable[Any]) -> str:
    """sha256 over each array's dtype, shape and bytes (little-endian), in order."""
    h = hashlib.sha256()
    for x in arrays:
        dtype, a = _canonical(x)
        h.update(f"{dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _from(obj: Any, package: str) -> bool:
    """Whether obj's class (or a base class) comes from `package` (a user's subclass lives in __main__)."""
    return any(c.__module__.split(".")[0] == package for c in type(obj).__mro__)


def _is_keras_model(obj: Any) -> bool:
    return _from(obj, "keras") and hasattr(obj, "get_weights")


def _flatten(obj: Any, path: str, out: list[tuple[str, Any]]) -> None:
    if isinstance(obj, Mapping):
        for k in sorted(obj, key=str):
            _flatten(obj[k], f"{path}/{k}" if path else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{path}/{i}" if path else str(i), out)
    elif obj is None:
        return
    elif hasattr(obj, "shape") or isinstance(obj, (int, float, np.number)):
        out.append((path, obj))
    elif "jax" in sys.modules:  # a registered pytree node (a Flax struct, an optax state)
        import jax

        leaves = jax.tree_util.tree_flatten_with_path(obj)[0]
        out.extend((f"{path}/{jax.tree_util.keystr(p)}", v) for p, v in leaves)
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}: pass a model, a state_dict, a pytree or arrays")


def _weights(model: Any) -> list[tuple[str, Any]]:
    """(name, framework array) of every weight, in the canonical order (see `weight_arrays`)."""
    if _is_keras_model(model):
        return [(f"{i:04d}", w) for i, w in enumerate(model.get_weights())]
    if _from(model, "torch") and callable(getattr(model, "state_dict", None)):
        model = model.state_dict()
    if isinstance(model, Mapping) and model and all(_from(v, "torch") for v in model.values()):
        return sorted((str(k), v) for k, v in model.items())  # a state_dict: by name, not its insertion order
    leaves: list[tuple[str, Any]] = []
    _flatten(model, "", leaves)
    return leaves


def weight_arrays(model: Any) -> list[tuple[str, np.ndarray]]:
    """(name, array) of every weight of `model`, in a stable order.

    Keras: `model.get_weights()` in layer order (names are indices); PyTorch: the `state_dict`
    (parameters and buffers) by name; pytrees and mappings: leaves by sorted key path.
    """
    return [(k, _to_numpy(v)) for k, v in _weights(model)]


def digest_weights(model: Any) -> str:
    """Digest of every weight of a model (Keras model, torch module or state_dict, JAX/Flax pytree, arrays).

    A Keras model's digest is `digest_arrays(model.get_weights())`; for the others the weights'
    names are part of it, so a module and its `state_dict` digest the same.
    """
    if _is_keras_model(model):
        return digest_arrays(model.get_weights())
    h = hashlib.sha256()
    for name, x in _weights(model):
        dtype, a = _canonical(x)
        h.update(f"{name}:{dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def digest_predictions(probs: Any) -> str:
    """Digest of predictions (probabilities or scores), as float32."""
    return digest_arrays([np.asarray(_to_numpy(probs), dtype=np.float32)])


@dataclass
class Digests:
    """The digests of one run, as written to `repro/digests.json`."""

    data: str = ""
    weights_initial: str = ""
    weights_epochs: list[str] = field(default_factory=list)
    weights_final: str = ""
    predictions: str = ""

    def to_dict(self) -> dict:
        return {"schema": 1, "epoch_numbering": "from 1", **asdict(self)}

    def to_tags(self) -> dict[str, str]:
        tags = {"repro.digest.data": self.data, "repro.digest.weights.initial": self.weights_initial,
                "repro.digest.weights": self.weights_final, "repro.digest.predictions": self.predictions}
        tags.update({f"repro.digest.weights.epoch.{i}": d for i, d in enumerate(self.weights_epochs, start=1)})
        if self.weights_epochs:  # epoch 0: the weights before training, so the per-epoch series starts there
            tags["repro.digest.weights.epoch.0"] = self.weights_initial
        return {k: v for k, v in tags.items() if v}


def first_divergent_epoch(a: Sequence[str], b: Sequence[str], initial: tuple[str, str] | None = None) -> int | None:
    """The first epoch whose weight digests differ between two runs, or None if none does.

    a, b: per-epoch digests (epoch 1 first); initial: the two runs' initial weight digests, where
    taken: 0 when they differ (the runs part before training: a seed or initialisation difference).
    """
    if initial and all(initial) and initial[0] != initial[1]:
        return 0
    for i, (x, y) in enumerate(zip(a, b), start=1):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b)) + 1


def divergence(a: Digests, b: Digests) -> str:
    """Where two runs' weights part, in words: "differ before training", "epoch <n>" or "never"."""
    e = first_divergent_epoch(a.weights_epochs, b.weights_epochs, (a.weights_initial, b.weights_initial))
    return "never" if e is None else "differ before training" if e == 0 else f"epoch {e}"


_CURRENT = Digests()


def current() -> Digests:
    """The digests this process has collected so far (what `log_epoch` appends to)."""
    return _CURRENT


def reset() -> Digests:
    """Start a new collection (for a script that trains several models in one process)."""
    global _CURRENT
    _CURRENT = Digests()
    return _CURRENT


def _active_run() -> bool:
    if "mlflow" not in sys.modules:
        return False
    import mlflow

    return mlflow.active_run() is not None


def set_tags(tags: dict[str, str]) -> None:
    """Set tags on the active MLflow run (started if none is), in as few store calls as MLflow allows."""
    import mlflow

    items = [(k, str(v)) for k, v in tags.items()]
    for i in range(0, len(items), MAX_TAGS_PER_BATCH):
        mlflow.set_tags(dict(items[i:i + MAX_TAGS_PER_BATCH]))


def log_epoch(model: Any, digests: Digests | None = None) -> str:
    """Append the weights digest of the epoch that just ended (epochs from 1); return it.

    For hand-written PyTorch or JAX loops: call it once at the end of every epoch. The digest is
    also set as the tag `repro.digest.weights.epoch.<n>` when an MLflow run is active.
    """
    d = digests if digests is not None else _CURRENT
    digest = digest_weights(model)
    d.weights_epochs.append(digest)
    if _active_run():
        set_tags({f"repro.digest.weights.epoch.{len(d.weights_epochs)}": digest})
    return digest


def keras_callback(digests: Digests | None = None):
    """A Keras callback appending the weights digest at the end of every epoch (to `digests`, default `current()`)."""
    import keras

    d = digests if digests is not None else _CURRENT

    class DigestCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            d.weights_epochs.append(digest_weights(self.model))

    return DigestCallback()


def _log_npz(name: str, arrays: dict[str, np.ndarray]) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        np.savez_compressed(path, **arrays)
        mlflow.log_artifact(str(path), artifact_path="repro")


def log_predictions(probs: Any, labels: Any | None = None) -> None:
    """The predictions (float32 probabilities, int labels) as `repro/predictions.npz`."""
    arrays = {"probabilities": np.asarray(_to_numpy(probs), dtype=np.float32)}
    if labels is not None:
        arrays["labels"] = np.asarray(_to_numpy(labels)).astype(np.int64)
    _log_npz("predictions.npz", arrays)


def log_evidence(model: Any | None = None, *, predictions: Any | None = None, labels: Any | None = None,
                 data: Sequence[Any] | None = None, initial: Any | None = None, digests: Digests | None = None,
                 primary_metric: str | None = None, save_weights: bool = True,
                 tags: dict[str, str] | None = None) -> Digests:
    """Log a run's evidence to the active MLflow run, or the one `mlflow run` started (`MLFLOW_RUN_ID`).

    Outside both it refuses (EvidenceError, one line) rather than create a store and a run silently.

    model: the trained model (final weights digest, and `repro/weights.npz` unless save_weights=False);
    predictions, labels: test-set probabilities and true labels (`repro/predictions.npz`, churn);
    data: the arrays trained and tested on (`repro.digest.data`); initial: the initial weights
    digest if it was taken (`digest_weights(model)` before training). The per-epoch digests
    (`log_epoch`, `keras_callback`) and the `repro.det.*` tags of `determinism.configure` in
    this process are logged with them. Returns the digests logged.
    """
    import os

    import mlflow

    if mlflow.active_run() is None and not os.environ.get("MLFLOW_RUN_ID"):
        raise EvidenceError("log_evidence needs an MLflow run: call it inside mlflow.start_run(), or run the "
                            "script with mlflow run")
    d = digests if digests is not None else _CURRENT
    if data is not None:
        d.data = digest_arrays(data)
    if initial is not None:
        d.weights_initial = initial
    if model is not None:
        d.weights_final = digest_weights(model)
    if predictions is not None:
        d.predictions = digest_predictions(predictions)
    from . import determinism

    all_tags = {**determinism.current_tags(), **d.to_tags(), **(tags or {})}
    if primary_metric:
        all_tags["repro.primary_metric"] = primary_metric
    set_tags(all_tags)
    mlflow.log_dict(d.to_dict(), "repro/digests.json")
    if predictions is not None:
        log_predictions(predictions, labels)
    if model is not None and save_weights:
        _log_npz("weights.npz", {k.replace("/", "."): a for k, a in weight_arrays(model)})
    return d
