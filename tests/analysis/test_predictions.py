"""Churn, weight distance, per-class spread and divergence epoch, from functions and from run artifacts."""

import itertools
import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.analysis import load, pipeline, predictions

from .store import add_runs


def test_churn_and_l2_by_hand():
    a, b, c = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), np.array([1, 1, 1, 2])
    assert predictions.churn(a, b) == 0.25
    assert predictions.mean_pairwise_churn([a, b, c]) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert predictions.mean_pairwise_churn([a]) is None
    w1, w2 = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    assert predictions.weight_l2(w1, w2) == pytest.approx(2.0)


def test_per_class_accuracy_and_spread():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    labels = np.array([0, 1, 1, 1])
    acc = predictions.per_class_accuracy(probs, labels)
    assert acc[0] == 1.0 and acc[1] == pytest.approx(2 / 3) and np.isnan(acc[2])
    sp = predictions.per_class_spread([acc, np.array([0.5, 1.0, np.nan])])
    assert sp[0]["range"] == 0.5 and sp[1]["range"] == pytest.approx(1 / 3)
    assert sp[0]["std"] == pytest.approx(np.std([1.0, 0.5], ddof=1)) and sp[2]["range"] is None


def test_divergence_epoch():
    assert predictions.divergence_epoch({"r1": {0: "a", 1: "b", 2: "c"}, "r2": {0: "a", 1: "b", 2: "x"}}) == 2
    assert predictions.divergence_epoch({"r1": {0: "a", 1: "b"}, "r2": {0: "a", 1: "b"}}) is None
    assert predictions.parse_digests_json({"weights": {"0": "a", "1": "b"}}) == {0: "a", 1: "b"}
    assert predictions.parse_digests_json({"epochs": [{"epoch": 3, "weights": "z"}]}) == {3: "z"}
    # the shape the examples write (repro_mlflow/evidence.py)
    from repro_mlflow.evidence import Digests

    d = Digests(weights_epochs=["a", "b"], weights_final="b").to_dict()
    assert predictions.parse_digests_json(json.loads(json.dumps(d))) == {1: "a", 2: "b"}


def test_prediction_evidence_from_artifacts(tracking, tmp_path):
    client = MlflowClient(tracking)
    exp = client.create_experiment("p")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    base = rng.random((50, 3)).astype(np.float32)
    runs = []
    for rep in range(3):
        runs.append({"tags": {"mlflow.project.entryPoint": "ex", "repro.fp.env": "e", "repro.repeat": rep,
                              "repro.digest.weights": f"w{rep}"}, "metrics": {"test_accuracy": 0.5 + rep / 100}})
    ids = add_runs(client, exp, runs)
    probs, weights = [], []
    for rep, rid in enumerate(ids):
        p = base.copy()
        p[: rep * 5, 0] += 2  # each repeat flips more examples to class 0
        w = {"dense": np.full((2, 2), rep, np.float32), "bias": np.arange(3, dtype=np.float32)}
        d = tmp_path / rid / "repro"
        d.mkdir(parents=True)
        np.savez(d / "predictions.npz", probabilities=p, labels=labels)
        np.savez(d / "weights.npz", **w)
        (d / "digests.json").write_text(json.dumps({"weights": {"0": "same", "1": f"e1-{rep > 0}", "2": f"e2-{rep}"}}))
        client.log_artifacts(rid, str(d), "repro")
        probs.append(p)
        weights.append(np.concatenate([w["bias"].ravel(), w["dense"].ravel()]))
    df = load.load_runs(tracking, load.Selection())
    res, _ = pipeline.analyse(df, pipeline.Options(), tracking)
    ex = res["examples"][0]
    pe = ex["predictions"][0]
    labs = [p.argmax(1) for p in probs]
    pairs = [np.mean(labs[i] != labs[j]) for i, j in itertools.combinations(range(3), 2)]
    assert pe["n_runs_predictions"] == 3 and pe["mean_pairwise_churn"] == pytest.approx(np.mean(pairs))
    assert pe["max_pairwise_churn"] == pytest.approx(max(pairs))
    l2 = [np.linalg.norm(weights[i] - weights[j]) for i, j in itertools.combinations(range(3), 2)]
    assert pe["mean_pairwise_l2"] == pytest.approx(np.mean(l2))
    accs = np.array([[np.mean(lab[labels == k] == k) for k in range(3)] for lab in labs])
    assert [c["range"] for c in pe["per_class"]] == pytest.approx(list(np.ptp(accs, axis=0)))
    assert ex["divergence"] == [{"example": "ex", "config": "all runs", "n_runs": 3, "first_divergent_epoch": 1,
                                 "note": None}]
    # the test set's own noise from the predictions themselves: the bootstrap over their 50 examples, close to
    # the binomial SE of each run's accuracy
    nz = ex["noise"]
    assert nz["n_test"] == 50 and nz["source"] == "bootstrap over the 50 test examples of repro/predictions.npz"
    binom = np.mean([np.sqrt(np.mean(lab == labels) * (1 - np.mean(lab == labels)) / 50) for lab in labs])
    assert nz["se"] == pytest.approx(binom, rel=0.15)


def test_divergence_from_epoch_tags():
    from .store import frame

    runs = [{"tags": {"mlflow.project.entryPoint": "ex", "repro.fp.env": env, "repro.digest.weights.epoch.0": "a",
                      "repro.digest.weights.epoch.1": e1, "repro.digest.weights": e1}, "metrics": {"acc": 0.5}}
            for env, e1 in (("x", "b"), ("y", "c"))]
    ex = pipeline.analyse(frame(runs), pipeline.Options())[0]["examples"][0]
    assert ex["divergence"][0]["first_divergent_epoch"] == 1
    assert "repro.digest.weights.epoch.0" not in ex["outcomes"]


def test_divergence_before_training_from_initial_weights():
    from .store import frame

    runs = [{"tags": {"mlflow.project.entryPoint": "ex", "repro.fp.env": env, "repro.digest.weights.epoch.0": e0,
                      "repro.digest.weights.epoch.1": e1, "repro.digest.weights": e1}, "metrics": {"acc": 0.5}}
            for env, e0, e1 in (("x", "a", "b"), ("y", "q", "c"))]  # seeds 1 and 2: other initial weights
    [row] = pipeline.analyse(frame(runs), pipeline.Options())[0]["examples"][0]["divergence"]
    assert row["first_divergent_epoch"] == 0 and row["note"].startswith("differ before training")
    assert predictions.parse_digests_json({"epoch_numbering": "from 1", "weights_initial": "i", "weights_epochs": ["a", "b"]}) \
        == {0: "i", 1: "a", 2: "b"}
