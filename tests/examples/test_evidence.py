"""Digests are bitwise: any change of value, dtype or shape changes them; epochs are compared from 1."""

from __future__ import annotations

import numpy as np

from repro_mlflow.evidence import Digests, digest_arrays, first_divergent_epoch


def test_digest_is_bitwise():
    a = np.arange(6, dtype=np.float32)
    assert digest_arrays([a]) == digest_arrays([a.copy()])
    b = a.copy()
    b[3] = np.nextafter(b[3], np.float32(10))  # one ulp
    assert digest_arrays([b]) != digest_arrays([a])
    assert digest_arrays([a.astype(np.float64)]) != digest_arrays([a])
    assert digest_arrays([a.reshape(2, 3)]) != digest_arrays([a])
    assert digest_arrays([a[:3], a[3:]]) != digest_arrays([a[3:], a[:3]])


def test_first_divergent_epoch():
    assert first_divergent_epoch(["x", "y", "z"], ["x", "y", "z"]) is None
    assert first_divergent_epoch(["x", "y", "z"], ["x", "q", "z"]) == 2
    assert first_divergent_epoch(["x"], ["x", "y"]) == 2


def test_digest_tags_number_epochs_from_one():
    d = Digests(data="d", weights_initial="i", weights_epochs=["e1", "e2"], weights_final="e2", predictions="p")
    tags = d.to_tags()
    assert tags["repro.digest.weights.epoch.1"] == "e1" and tags["repro.digest.weights.epoch.2"] == "e2"
    assert tags["repro.digest.weights"] == "e2" and tags["repro.digest.data"] == "d"
    assert d.to_dict()["weights_epochs"] == ["e1", "e2"]
