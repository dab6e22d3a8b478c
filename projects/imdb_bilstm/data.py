"""IMDB reviews as integer token sequences: the real Keras loader, or a bundled stand-in.

The stand-in has the real data's shape: token ids as `keras.datasets.imdb.load_data(num_words=20000)`
gives them (1 = start, 2 = out of vocabulary, words from 3 up by frequency rank), Zipf-distributed
words, review lengths with IMDB's long tail (median ~180 tokens), 25,000 + 25,000 reviews, half of
them positive. A planted signal makes it learnable even from a few hundred short reviews: 10 "positive" and 10
"negative" words (among ranks 50-1000) make up about 15% of a review's tokens, nine in ten of them
from its own class.
"""

from __future__ import annotations

import numpy as np

MAX_FEATURES = 20000  # vocabulary of the keras-io example (num_words)
REAL_SIZE = 25000  # reviews per split in the real data set
START, OOV, INDEX_FROM = 1, 2, 3
BUNDLED_SEED = 20220102  # fixed: the stand-in is the same everywhere
SIGNAL_RATE = 0.15
SIGNAL_PURITY = 0.9
SIGNAL_WORDS = 10


def _signal_words(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ranks = rng.choice(np.arange(50, 1000), size=2 * SIGNAL_WORDS, replace=False) + INDEX_FROM
    return ranks[:SIGNAL_WORDS], ranks[SIGNAL_WORDS:]


def _reviews(n: int, seed: int, num_words: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` reviews (object array of int32 token arrays) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    pos_words, neg_words = _signal_words(np.random.default_rng(BUNDLED_SEED))
    ranks = np.arange(1, num_words - INDEX_FROM + 1)
    p = 1.0 / ranks ** 1.07
    p /= p.sum()
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    lengths = np.clip(rng.lognormal(np.log(180), 0.7, size=n), 10, 2500).astype(np.int64)
    words = rng.choice(ranks, size=int(lengths.sum()), p=p) + INDEX_FROM - 1
    signal = rng.random(words.shape[0]) < SIGNAL_RATE
    own = rng.random(words.shape[0]) < SIGNAL_PURITY
    pick = rng.integers(0, SIGNAL_WORDS, size=words.shape[0])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    label_of_token = np.repeat(labels, lengths)
    positive_word = np.where(own, label_of_token == 1, label_of_token == 0)
    words = np.where(signal, np.where(positive_word, pos_words[pick], neg_words[pick]), words)
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = np.concatenate([[START], words[bounds[i]:bounds[i + 1]]]).astype(np.int32)
    return out, labels


def load_bundled(n_train: int, n_test: int, num_words: int = MAX_FEATURES):
    """The stand-in: `n_train` + `n_test` reviews (0 = the real sizes, 25,000 each)."""
    (x_tr, y_tr) = _reviews(n_train or REAL_SIZE, BUNDLED_SEED + 1, num_words)
    (x_te, y_te) = _reviews(n_test or REAL_SIZE, BUNDLED_SEED + 2, num_words)
    return (x_tr, y_tr), (x_te, y_te)


def load_keras(n_train: int, n_test: int, num_words: int = MAX_FEATURES):
    """`keras.datasets.imdb.load_data(num_words=...)`, cut to the first `n_train` / `n_test` (0 = all)."""
    import keras

    try:
        (x_tr, y_tr), (x_te, y_te) = keras.datasets.imdb.load_data(num_words=num_words)
    except Exception as e:  # noqa: BLE001 - offline without a cache
        raise RuntimeError(f"keras.datasets.imdb could not load ({type(e).__name__}: {e}); "
                           "offline, pre-seed $KERAS_HOME/datasets/imdb.npz or use data=bundled") from None
    n_train, n_test = n_train or len(y_tr), n_test or len(y_te)
    return (x_tr[:n_train], y_tr[:n_train]), (x_te[:n_test], y_te[:n_test])


def load(source: str, n_train: int = 0, n_test: int = 0):
    if source == "bundled":
        return load_bundled(n_train, n_test)
    if source == "keras":
        return load_keras(n_train, n_test)
    raise RuntimeError(f"unknown data source '{source}' (keras or bundled)")
