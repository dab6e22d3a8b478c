"""IMDB reviews as integer token sequences: the real Keras loader, or a bundled stand-in.

The stand-in has the real data's shape: token ids as `keras.datasets.imdb.load_data(num_words=20000)`
gives them (0 = padding, 1 = start, 2 = out of vocabulary, 3 unused, the word of frequency rank r
is r + 3, so rank 1 is 4), Zipf-distributed words over IMDB's 88,584-word vocabulary (ranks past
19,996 become 2, as with `num_words`), review lengths with IMDB's long tail (median ~180 tokens),
25,000 + 25,000 reviews, half of them positive.

Its sentiment has the real data's structure, not a handful of marker words: a review mentions
sentiment words (LEXICON_SIZE positive and as many negative words among ranks 30-6,000, used with a
Zipf spread of their own, so the signal is spread over hundreds of words); each mention expresses
the review's tone t (positive with probability t; t ~ Beta(TONE_BETA) for a positive review, 1 - t
for a negative one). Order matters twice:
- negation: a share NEGATION of mentions is said through a negator ("not", "never", "no") one or
  two tokens before a word of the opposite polarity ("not good" expresses negative); negators also
  stand before neutral words, so their count says nothing;
- contrast: a share CONTRAST of reviews opens with a concession in the opposite tone, then "but",
  then the verdict ("great cast, but a dull film"); only the order tells which part is which.
A bag-of-words model reads "not good" as good and a concession as the verdict; a reader of the
order (`oracle_accuracy`: the generator's own rules, the ceiling no model can pass) does not.
`bench/bench_calibration.py` records both proxies and the BiLSTM at full size.
"""

from __future__ import annotations

import numpy as np

MAX_FEATURES = 20000  # vocabulary of the keras-io example (num_words)
REAL_SIZE = 25000  # reviews per split in the real data set
REAL_VOCABULARY = 88584  # words in keras.datasets.imdb.get_word_index()
PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3  # as keras.datasets.imdb: rank r -> id r + INDEX_FROM
GENERATOR = "2: structure (issue 25)"  # bench/results/calibration.json records per version
BUNDLED_SEED = 20220102  # fixed: the stand-in is the same everywhere
ZIPF_EXPONENT = 1.07
# Function words of the real IMDB index (ranks): "but" (18), "not" (21), "no" (54), "never" (111).
BUT_RANK = 18
NEGATOR_RANKS = (21, 54, 111)
LEXICON_SIZE = 300  # sentiment words per polarity
LEXICON_RANKS = (30, 6000)
LEXICON_ZIPF = 1.0  # how unevenly the sentiment words are used
MENTION_RATE = 0.08  # share of a review's tokens that are sentiment words
NEGATION = 0.15  # share of mentions said through a negator
DECOY_NEGATORS = 0.02  # negators before neutral words, per token
CONTRAST = 0.2  # share of reviews with a concession, "but", then the verdict
CONCESSION = (0.2, 0.6)  # the concession's share of the review, uniform
TONE_BETA = (6.0, 1.2)  # a positive review's tone (share of its mentions that express positive)


def word_id(rank: np.ndarray | int, num_words: int = MAX_FEATURES):
    """The token id of a word of frequency rank `rank` (from 1) under `num_words`, as Keras gives it."""
    ids = np.asarray(rank) + INDEX_FROM
    return np.where(ids < num_words, ids, OOV)


def special_words() -> dict[str, np.ndarray]:
    """The token ids of "but" and of the negators."""
    return {"but": np.array([int(word_id(BUT_RANK))]), "negators": word_id(np.array(NEGATOR_RANKS))}


def lexicon() -> tuple[np.ndarray, np.ndarray]:
    """The token ids of the positive and the negative sentiment words (most used first)."""
    ranks = np.setdiff1d(np.arange(*LEXICON_RANKS), (BUT_RANK, *NEGATOR_RANKS))
    ranks = np.random.default_rng(BUNDLED_SEED).choice(ranks, size=2 * LEXICON_SIZE, replace=False)
    ids = word_id(ranks)
    return ids[:LEXICON_SIZE], ids[LEXICON_SIZE:]


def _reviews(n: int, seed: int, num_words: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` reviews (object array of int32 token arrays) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    pos_words, neg_words = lexicon()
    special = special_words()
    negators = special["negators"]
    ranks = np.arange(1, REAL_VOCABULARY + 1)
    p = 1.0 / ranks ** ZIPF_EXPONENT
    p[[BUT_RANK - 1, *(r - 1 for r in NEGATOR_RANKS)]] = 0.0  # function words only where the rules put them
    in_lexicon = np.isin(word_id(ranks), np.concatenate([pos_words, neg_words])) & (ranks < num_words - INDEX_FROM)
    p[in_lexicon] = 0.0  # sentiment words only as mentions
    p /= p.sum()
    q = 1.0 / np.arange(1, LEXICON_SIZE + 1) ** LEXICON_ZIPF
    q /= q.sum()

    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    lengths = np.clip(rng.lognormal(np.log(180), 0.7, size=n), 10, 2500).astype(np.int64)
    tone = rng.beta(*TONE_BETA, size=n)
    tone = np.where(labels == 1, tone, 1.0 - tone)
    contrast = rng.random(n) < CONTRAST
    cut = np.where(contrast, (rng.uniform(*CONCESSION, size=n) * lengths).astype(np.int64), -1)
    total = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    review = np.repeat(np.arange(n), lengths)
    pos_in = np.arange(total) - np.repeat(starts, lengths)  # position within the review
    words = word_id(rng.choice(ranks, size=total, p=p), num_words)

    # mentions: at least 3 tokens apart (room for a negator and one word between)
    near_cut = (pos_in >= cut[review]) & (pos_in <= cut[review] + 2)  # the "but" and the two tokens after it
    mention = (rng.random(total) < MENTION_RATE) & (pos_in >= 2) & ~near_cut
    idx = np.flatnonzero(mention)
    keep = np.ones(len(idx), bool)
    last = -10
    for j, i in enumerate(idx):  # sequential: drop a mention too close to the one kept before it
        if i - last < 3 and review[i] == review[last]:
            keep[j] = False
        else:
            last = i
    idx = idx[keep]
    r = review[idx]
    conceding = pos_in[idx] < cut[r]  # before the "but": the opposite tone
    expressed = rng.random(len(idx)) < np.where(conceding, 1.0 - tone[r], tone[r])  # True: positive
    negated = rng.random(len(idx)) < NEGATION
    lexical = expressed ^ negated
    pick = np.minimum(rng.choice(LEXICON_SIZE, size=len(idx), p=q), LEXICON_SIZE - 1)
    words[idx] = np.where(lexical, pos_words[pick], neg_words[pick])
    gap = 1 + (rng.random(len(idx)) < 0.3)  # "not good" or "not very good"
    words[idx[negated] - gap[negated]] = negators[rng.integers(0, len(negators), size=int(negated.sum()))]
    # decoys: negators before neutral words (not a mention, not next to one)
    free = ~np.isin(np.arange(total), np.concatenate([idx, idx - 1, idx - 2, idx + 1]))
    decoy = np.flatnonzero(free & (rng.random(total) < DECOY_NEGATORS) & (pos_in >= 1))
    words[decoy] = negators[rng.integers(0, len(negators), size=len(decoy))]
    # the "but" of a contrast review, at its cut (no mention there, nor right after it)
    has_cut = np.flatnonzero(contrast & (cut >= 1))
    words[starts[has_cut] + cut[has_cut]] = special["but"][0]

    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = np.concatenate([[START], words[starts[i]:starts[i] + lengths[i]]]).astype(np.int32)
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


def _roles(num_words: int = MAX_FEATURES) -> np.ndarray:
    """Each token id's role: 0 other, 1 positive word, 2 negative word, 3 negator, 4 "but"."""
    roles = np.zeros(max(num_words, MAX_FEATURES), np.int8)
    pos_words, neg_words = lexicon()
    roles[pos_words[pos_words != OOV]], roles[neg_words[neg_words != OOV]] = 1, 2
    roles[special_words()["negators"]], roles[special_words()["but"]] = 3, 4
    return roles


def read_mentions(sequence, maxlen: int = 200, order: bool = True, roles: np.ndarray | None = None) -> tuple[int, int]:
    """(positive, negative) sentiment expressed in the last `maxlen` tokens of one review.

    order=True reads as the generator writes: a negator one or two tokens before a sentiment word
    flips it, and before the last "but" (a concession) the tone is the opposite one. order=False
    counts the words as a bag of words would (each word its dictionary polarity).
    """
    r = (_roles() if roles is None else roles)[np.asarray(sequence)[-maxlen:]]
    at = np.flatnonzero((r == 1) | (r == 2))
    positive = r[at] == 1
    if order:
        negated = np.zeros(len(at), bool)
        for gap in (1, 2):
            ok = at >= gap
            negated[ok] |= r[at[ok] - gap] == 3
        buts = np.flatnonzero(r == 4)
        conceding = at < buts[-1] if len(buts) else np.zeros(len(at), bool)
        positive = positive ^ negated ^ conceding
    return int(positive.sum()), int((~positive).sum())


def oracle_accuracy(sequences, labels, maxlen: int = 200, order: bool = True) -> float:
    """Accuracy of the Bayes-optimal reader of the mentions over the last `maxlen` tokens.

    Given k+ positive and k- negative mentions (`read_mentions`), P(positive) / P(negative) is
    B(a + k+, b + k-) / B(b + k+, a + k-) for tones Beta(a, b): with order=True the ceiling no model
    of the stand-in can pass; with order=False what reading the words alone allows.
    """
    from scipy.special import betaln

    roles = _roles()
    k = np.array([read_mentions(s, maxlen, order, roles) for s in sequences]).reshape(-1, 2)
    a, b = TONE_BETA
    positive = betaln(a + k[:, 0], b + k[:, 1]) > betaln(b + k[:, 0], a + k[:, 1])
    return float((positive == (np.asarray(labels) == 1)).mean())
