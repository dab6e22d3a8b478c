"""The bundled stand-ins have the real data's structure: simple models (a bag of words, a plane) fall
short of what a reader of the order or a non-linear model gets, and neither aces them. The
full-size trainings are in bench/bench_calibration.py (bench/results/calibration.json)."""

from __future__ import annotations

import numpy as np
import pytest

from projects.common import proxies
from projects.imbalanced_classification import data as fraud
from projects.imbalanced_classification.__main__ import split
from projects.imdb_bilstm import data as imdb


@pytest.fixture(scope="module")
def reviews():
    return imdb.load_bundled(3000, 2000)


def _mentions(sequences, labels):
    """(label, dictionary polarity positive, negated, before the last "but") of every sentiment word."""
    roles = imdb._roles()
    rows = []
    for s, label in zip(sequences, labels):
        r = roles[np.asarray(s)]
        at = np.flatnonzero((r == 1) | (r == 2))
        negated = (r[np.maximum(at - 1, 0)] == 3) | (r[np.maximum(at - 2, 0)] == 3)
        buts = np.flatnonzero(r == 4)
        conceding = at < buts[-1] if len(buts) else np.zeros(len(at), bool)
        rows.append(np.column_stack([np.full(len(at), label), r[at] == 1, negated, conceding]))
    return np.concatenate(rows).astype(bool)


def test_imdb_bag_of_words_stays_clearly_below_a_reader_of_the_order(reviews):
    (x_tr, y_tr), (x_te, y_te) = reviews
    bow = proxies.bag_of_words_accuracy(x_tr, y_tr, x_te, y_te, maxlen=200)
    nb = proxies.count_classifier_accuracy(x_tr, y_tr, x_te, y_te, maxlen=200)
    words_only = imdb.oracle_accuracy(x_te, y_te, maxlen=200, order=False)  # knows every word's polarity
    ceiling = imdb.oracle_accuracy(x_te, y_te, maxlen=200)  # and reads negations and concessions
    assert 0.65 < nb < 0.85 and 0.65 < bow < 0.85, (nb, bow)  # learns, but far from perfect
    assert max(nb, bow) <= words_only + 0.02, (nb, bow, words_only)
    assert 0.90 < ceiling < 0.97 and ceiling > words_only + 0.07, (ceiling, words_only)


def test_imdb_sentiment_depends_on_the_order_of_the_words(reviews):
    _, (x_te, y_te) = reviews
    rng = np.random.default_rng(0)
    shuffled = np.empty(len(x_te), dtype=object)
    for i, s in enumerate(x_te):
        shuffled[i] = np.concatenate([s[:1], rng.permutation(s[1:])])
    whole = 10**6  # every token (maxlen would keep other words of a shuffled review)
    ordered = imdb.oracle_accuracy(x_te, y_te, maxlen=whole)
    assert imdb.oracle_accuracy(shuffled, y_te, maxlen=whole) < ordered - 0.07  # the same words, another order: misread
    words_only = imdb.oracle_accuracy(x_te, y_te, maxlen=whole, order=False)
    assert imdb.oracle_accuracy(shuffled, y_te, maxlen=whole, order=False) == words_only < ordered - 0.07


def test_imdb_negation_and_concession_flip_a_words_polarity(reviews):
    (x_tr, y_tr), _ = reviews
    m = _mentions(x_tr, y_tr)
    label, positive, negated, conceding = m.T
    plain = ~negated & ~conceding
    # in positive reviews: plain mentions are mostly positive words, negated ones mostly negative words
    assert positive[label & plain].mean() > 0.75
    assert positive[label & negated & ~conceding].mean() < 0.3
    assert positive[label & conceding & ~negated].mean() < 0.3  # a concession before "but" says the opposite
    assert positive[~label & plain].mean() < 0.25 and positive[~label & negated & ~conceding].mean() > 0.7
    assert 0.1 < negated.mean() < 0.25 and 0.03 < conceding.mean() < 0.2


def test_imdb_sentiment_is_spread_over_hundreds_of_words(reviews, monkeypatch):
    (x_tr, _), (x_te, y_te) = reviews
    roles = imdb._roles()
    tokens = np.concatenate(list(x_tr))
    counts = np.bincount(tokens[np.isin(roles[tokens], (1, 2))], minlength=len(roles))
    assert (counts > 0).sum() >= 500  # of 600 sentiment words
    top = np.argsort(counts)[::-1][:20]
    assert counts[top].sum() / counts.sum() < 0.55  # the 20 most used carry about half the mentions
    full = imdb.oracle_accuracy(x_te, y_te, order=False)
    only_top, without_top = roles.copy(), roles.copy()
    only_top[np.setdiff1d(np.flatnonzero(np.isin(roles, (1, 2))), top)] = 0
    without_top[top] = 0
    monkeypatch.setattr(imdb, "_roles", lambda num_words=imdb.MAX_FEATURES: only_top)
    top_only = imdb.oracle_accuracy(x_te, y_te, order=False)
    monkeypatch.setattr(imdb, "_roles", lambda num_words=imdb.MAX_FEATURES: without_top)
    rest = imdb.oracle_accuracy(x_te, y_te, order=False)
    assert top_only < full - 0.03 and 0.7 < rest < full, (top_only, rest, full)  # the rest carries signal of its own


def test_imdb_fewer_tokens_less_evidence(reviews):
    _, (x_te, y_te) = reviews
    assert 0.6 < imdb.oracle_accuracy(x_te, y_te, maxlen=32) < imdb.oracle_accuracy(x_te, y_te, maxlen=200)


def test_count_classifier_aces_separable_data():
    """The proxy itself can tell an easy set: one word per class, never shared."""
    y = np.arange(200) % 2
    x = np.array([[1] + [10 + label] * 9 for label in y])
    assert proxies.count_classifier_accuracy(x[:100], y[:100], x[100:], y[100:], maxlen=200) == 1.0
    assert proxies.bag_of_words_accuracy(x[:100], y[:100], x[100:], y[100:], maxlen=200, num_words=20) == 1.0


@pytest.fixture(scope="module")
def fraud_split():
    return split(*fraud.generate())


def _quadratic(x: np.ndarray) -> np.ndarray:
    return np.column_stack([x, x[:, 1:29] ** 2])  # V1..V28 squared beside the 30 columns


def test_fraud_no_plane_catches_70_percent_without_false_positives(fraud_split):
    (x_tr, y_tr), (x_val, y_val), class_weight = fraud_split
    lr = proxies.logistic_regression(x_tr, y_tr[:, 0], x_val, y_val[:, 0])  # unweighted
    assert lr["val_tp"] + lr["val_fn"] == int(y_val.sum()) and lr["val_tp"] + lr["val_fn"] + lr["val_fp"] + lr["val_tn"] == 56961
    assert lr["val_recall"] < 0.7, lr
    assert lr["val_fp_at_recall_0.7"] > 1000, lr  # to catch 70% a plane must flag many normal transactions
    weighted = proxies.logistic_regression(x_tr, y_tr[:, 0], x_val, y_val[:, 0], class_weight)
    assert weighted["val_fp_at_recall_0.7"] > 1000, weighted  # class weights move the plane, not its shape


def test_fraud_a_curved_boundary_catches_most_but_the_classes_overlap(fraud_split):
    (x_tr, y_tr), (x_val, y_val), class_weight = fraud_split
    linear = proxies.logistic_regression(x_tr, y_tr[:, 0], x_val, y_val[:, 0], class_weight)
    curved = proxies.logistic_regression(_quadratic(x_tr), y_tr[:, 0], _quadratic(x_val), y_val[:, 0], class_weight)
    assert 0.75 < curved["val_recall"] < 0.95 and curved["val_recall"] > linear["val_recall"] + 0.1, (curved, linear)
    assert 10 < curved["val_fp_at_recall_0.7"] < 1000, curved  # recall 0.7 costs false positives even so
    assert curved["train_recall"] < 0.95, curved  # some frauds are drawn as normal transactions


def test_logistic_regression_separates_separable_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 3))
    y = (x[:, 0] > 0).astype(int)
    lr = proxies.logistic_regression(x[:1000], y[:1000], x[1000:], y[1000:])
    assert lr["val_accuracy"] > 0.99 and lr["train_recall"] > 0.99 and lr["val_fp_at_recall_0.7"] == 0
