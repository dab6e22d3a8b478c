"""Bitwise evidence: digests of weights, predictions and data."""

from __future__ import annotations

import hashlib

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
    return digest_arrays(model.get_weights())


def digest_predictions(probs) -> str:
    return digest_arrays([np.asarray(probs, dtype=np.float32)])
