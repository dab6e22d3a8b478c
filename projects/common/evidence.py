"""Bitwise evidence: digests of data, weights (initial, per epoch, final) and predictions.

`Digests` collects them during a run; `DigestCallback` adds one weights digest per finished epoch.
Epochs are numbered from 1: `weights_epochs[0]` is the digest after the first epoch.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np


def digest_arrays(arrays) -> str:
    """sha256 over the raw bytes of each array, in order (dtype and shape included)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def digest_weights(model) -> str:
    """Digest of every weight of a Keras model (trainable and not), in layer order."""
    return digest_arrays(model.get_weights())


def digest_predictions(probs) -> str:
    return digest_arrays([np.asarray(probs, dtype=np.float32)])


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
        return {k: v for k, v in tags.items() if v}


def first_divergent_epoch(a: list[str], b: list[str]) -> int | None:
    """The first epoch (from 1) whose weight digests differ between two runs, or None if none does."""
    for i, (x, y) in enumerate(zip(a, b), start=1):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b)) + 1


def digest_callback(digests: Digests):
    """A Keras callback appending the weights digest at the end of every epoch."""
    import keras

    class DigestCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            digests.weights_epochs.append(digest_weights(self.model))

    return DigestCallback()
