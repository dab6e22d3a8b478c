"""The bundled stand-ins are as hard as the real data: quick proxies (simple models) neither ace
them nor fail to learn them. The full-size trainings are in bench/bench_calibration.py."""

from __future__ import annotations

import numpy as np

from projects.common import proxies
from projects.imbalanced_classification import data as fraud
from projects.imbalanced_classification.__main__ import split
from projects.imdb_bilstm import data as imdb


def test_imdb_count_classifier_is_imperfect_but_learns():
    (x_tr, y_tr), (x_te, y_te) = imdb.load_bundled(5000, 5000)
    acc = proxies.count_classifier_accuracy(x_tr, y_tr, x_te, y_te, maxlen=200)
    assert 0.80 < acc < 0.90, acc  # real IMDB: 0.85-0.88 for such models; the old stand-in gave 0.999
    short = proxies.count_classifier_accuracy(x_tr, y_tr, x_te, y_te, maxlen=32)
    assert 0.65 < short < acc, short  # fewer tokens, less evidence: still above chance (0.5)


def test_imdb_bayes_rate_is_the_ceiling():
    _, (x_te, y_te) = imdb.load_bundled(10, 5000)
    bayes = imdb.bayes_accuracy(x_te, y_te, maxlen=200)
    assert 0.84 < bayes < 0.90, bayes
    assert imdb.bayes_accuracy(x_te, y_te, maxlen=32) < bayes


def test_count_classifier_aces_separable_data():
    """The proxy itself can tell an easy set: one word per class, never shared."""
    y = np.arange(200) % 2
    x = np.array([[1] + [10 + label] * 9 for label in y])
    assert proxies.count_classifier_accuracy(x[:100], y[:100], x[100:], y[100:], maxlen=200) == 1.0


def test_fraud_logistic_regression_does_not_separate_the_standin():
    (x_tr, y_tr), (x_val, y_val), class_weight = split(*fraud.generate())
    lr = proxies.logistic_regression(x_tr, y_tr[:, 0], x_val, y_val[:, 0], class_weight)
    assert lr["val_tp"] + lr["val_fn"] == int(y_val.sum()) and lr["val_tp"] + lr["val_fn"] + lr["val_fp"] + lr["val_tn"] == 56961
    assert 0.7 < lr["val_recall"] < 0.95, lr  # some frauds look like normal transactions
    assert 100 < lr["val_fp"] < 2000, lr  # ... and some normal ones like frauds
    assert lr["train_recall"] < 0.95, lr  # not separable on the training rows either


def test_logistic_regression_separates_separable_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 3))
    y = (x[:, 0] > 0).astype(int)
    lr = proxies.logistic_regression(x[:1000], y[:1000], x[1000:], y[1000:])
    assert lr["val_accuracy"] > 0.99 and lr["train_recall"] > 0.99
