"""IMDB reviews as integer token sequences: the real Keras loader, or a bundled stand-in.

The stand-in has the real data's shape: token ids as `keras.datasets.imdb.load_data(num_words=20000)`
gives them (0 = padding, 1 = start, 2 = out of vocabulary, 3 unused, the word of frequency rank r
is r + 3, so rank 1 is 4), Zipf-distributed words over IMDB's 88,584-word vocabulary (ranks past
19,996 become 2, as with `num_words`), review lengths with IMDB's long tail (median ~180 tokens),
25,000 + 25,000 reviews, half of them positive.

It is as hard as the real data, with a known Bayes rate: 20% of a review's tokens are sentiment
words (10 "positive", 10 "negative", among ranks 50-1000), and each is positive with the review's
tone t: t ~ Beta(3.8, 1.3) for a positive review, 1 - t for a negative one. Tones overlap, so even an
infinitely long review is misread with P(t < 0.5) ~ 11%; at maxlen 200 the Bayes-optimal reader
of the counts scores ~0.87 and a bag-of-words count classifier a little less (the real data: 0.85-0.88).
`bench/bench_calibration.py` records both and the BiLSTM at full size.
"""

from __future__ import annotations

import numpy as np

MAX_FEATURES = 20000  # vocabulary of the keras-io example (num_words)
REAL_SIZE = 25000  # reviews per split in the real data set
REAL_VOCABULARY = 88584  # words in keras.datasets.imdb.get_word_index()
PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3  # as keras.datasets.imdb: rank r -> id r + INDEX_FROM
BUNDLED_SEED = 20220102  # fixed: the stand-in is the same everywhere
SIGNAL_RATE = 0.2  # share of a review's tokens that are sentiment words
SIGNAL_WORDS = 10  # per polarity
TONE_BETA = (3.8, 1.3)  # a positive review's tone (share of its sentiment words that are positive)
ZIPF_EXPONENT = 1.07


def word_id(rank: np.ndarray | int, num_words: int = MAX_FEATURES):
    """The token id of a word of frequency rank `rank` (from 1) under `num_words`, as Keras gives it."""
    ids = np.asarray(rank) + INDEX_FROM
    return np.where(ids < num_words, ids, OOV)


def signal_words() -> tuple[np.ndarray, np.ndarray]:
    """The token ids of the positive and the negative sentiment words."""
    ranks = np.random.default_rng(BUNDLED_SEED).choice(np.arange(50, 1000), size=2 * SIGNAL_WORDS, replace=False)
    ids = word_id(ranks)
    return ids[:SIGNAL_WORDS], ids[SIGNAL_WORDS:]


def _reviews(n: int, seed: int, num_words: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` reviews (object array of int32 token arrays) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    pos_words, neg_words = signal_words()
    ranks = np.arange(1, REAL_VOCABULARY + 1)
    p = 1.0 / ranks ** ZIPF_EXPONENT
    p /= p.sum()
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    lengths = np.clip(rng.lognormal(np.log(180), 0.7, size=n), 10, 2500).astype(np.int64)
    tone = rng.beta(*TONE_BETA, size=n)
    tone = np.where(labels == 1, tone, 1.0 - tone)
    total = int(lengths.sum())
    words = word_id(rng.choice(ranks, size=total, p=p), num_words)
    signal = rng.random(total) < SIGNAL_RATE
    positive = rng.random(total) < np.repeat(tone, lengths)
    pick = rng.integers(0, SIGNAL_WORDS, size=total)
    words = np.where(signal, np.where(positive, pos_words[pick], neg_words[pick]), words)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
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


def bayes_accuracy(sequences, labels, maxlen: int = 200) -> float:
    """Accuracy of the Bayes-optimal reader of the stand-in's sentiment counts over the last `maxlen` tokens.

    Given k+ positive and k- negative sentiment words, P(positive) / P(negative) is
    B(a + k+, b + k-) / B(b + k+, a + k-) for tones Beta(a, b) (neutral draws of the same ids,
    a fraction of a percent, are neglected): the ceiling no model of the stand-in can pass.
    """
    from scipy.special import betaln

    pos_words, neg_words = signal_words()
    kept = [np.asarray(s)[-maxlen:] for s in sequences]
    k_pos = np.array([np.isin(s, pos_words).sum() for s in kept])
    k_neg = np.array([np.isin(s, neg_words).sum() for s in kept])
    a, b = TONE_BETA
    positive = betaln(a + k_pos, b + k_neg) > betaln(b + k_pos, a + k_neg)
    return float((positive == (np.asarray(labels) == 1)).mean())
