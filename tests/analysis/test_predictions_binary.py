"""Binary classifiers (one sigmoid output) store 1-D probabilities: churn and per-class accuracy still work."""

import numpy as np

from repro_mlflow.analysis.predictions import churn, per_class_accuracy, predicted_labels


def test_sigmoid_outputs_threshold_at_one_half():
    p = np.array([0.1, 0.6, 0.5, 0.9], dtype=np.float32)
    assert predicted_labels(p).tolist() == [0, 1, 0, 1]
    assert predicted_labels(p.reshape(-1, 1)).tolist() == [0, 1, 0, 1]


def test_per_class_accuracy_binary_matches_hand_count():
    p = np.array([0.1, 0.6, 0.4, 0.9, 0.2], dtype=np.float32)
    y = np.array([0, 0, 1, 1, 0])
    acc = per_class_accuracy(p, y)
    # class 0: examples 0,1,4 -> predicted 0,1,0 -> 2/3 right; class 1: examples 2,3 -> 0,1 -> 1/2
    np.testing.assert_allclose(acc, [2 / 3, 1 / 2])


def test_churn_between_two_binary_runs():
    a = predicted_labels(np.array([0.1, 0.6, 0.7, 0.2]))
    b = predicted_labels(np.array([0.1, 0.4, 0.7, 0.8]))
    assert churn(a, b) == 0.5
