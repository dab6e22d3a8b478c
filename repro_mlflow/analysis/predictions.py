"""Prediction- and weight-level evidence: churn, weight L2 distance, per-class accuracy spread, divergence epoch.

Artifacts read (each optional; see docs/analysis.md):
- `repro/predictions.npz`: `probabilities` (float32, examples × classes) and `labels` (int, examples).
- `repro/weights.npz`: the model's weight arrays (any names); flattened in name order and concatenated.
- `repro/digests.json`: per-epoch weight digests, as the examples write it (`{"weights_epochs": [...],
  "epoch_numbering": "from 1"}`), or `{"weights": {"<epoch>": "<digest>"}}`, or
  `{"epochs": [{"epoch": n, "weights": "<digest>"}]}`; tags `repro.digest.weights.epoch.<n>` are preferred.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from urllib.parse import urlparse

import numpy as np
import pandas as pd

PREDICTIONS = "repro/predictions.npz"
WEIGHTS = "repro/weights.npz"
DIGESTS = "repro/digests.json"
EPOCH_TAG = "tags.repro.digest.weights.epoch."


def churn(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Share of examples whose predicted label differs between two runs."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape:
        raise ValueError("prediction arrays differ in shape")
    return float(np.mean(a != b))


def mean_pairwise_churn(predicted: list[np.ndarray]) -> float | None:
    """Mean churn over every pair of runs; None for fewer than two runs."""
    pairs = list(itertools.combinations(range(len(predicted)), 2))
    if not pairs:
        return None
    return float(np.mean([churn(predicted[i], predicted[j]) for i, j in pairs]))


def weight_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two flattened weight vectors."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def mean_pairwise_l2(weights: list[np.ndarray]) -> float | None:
    pairs = list(itertools.combinations(range(len(weights)), 2))
    if not pairs:
        return None
    return float(np.mean([weight_l2(weights[i], weights[j]) for i, j in pairs]))


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """Predicted class per example: argmax over classes, or probability > 0.5 for a single sigmoid output."""
    probs = np.asarray(probabilities)
    if probs.ndim == 1 or probs.shape[-1] == 1:
        return (probs.reshape(len(probs)) > 0.5).astype(int)
    return probs.argmax(axis=1)


def per_class_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy per true class (NaN for a class with no example), classes 0..C-1."""
    probs = np.asarray(probabilities)
    y = np.asarray(labels).astype(int).reshape(len(probs))
    pred = predicted_labels(probs)
    c = 2 if (probs.ndim == 1 or probs.shape[-1] == 1) else probs.shape[1]
    total = np.bincount(y, minlength=c).astype(float)
    right = np.bincount(y[pred == y], minlength=c).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, right / total, np.nan)


def bootstrap_se(correct: np.ndarray, n_boot: int = 200, seed: int = 0) -> float | None:
    """Standard error of an accuracy by the bootstrap over its test examples (`correct`: one bool per example)."""
    n = len(correct)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    c = np.asarray(correct, dtype=np.float64)
    means = np.array([c[rng.integers(0, n, n)].mean() for _ in range(n_boot)])
    return float(means.std(ddof=1))


def per_class_spread(accuracies: list[np.ndarray]) -> list[dict]:
    """Per class: min, max, range and std (ddof=1, None for one run) of accuracy across runs."""
    a = np.vstack(accuracies)
    out = []
    for k in range(a.shape[1]):
        col = a[:, k][~np.isnan(a[:, k])]
        if not len(col):
            out.append({"class": k, "min": None, "max": None, "range": None, "std": None})
            continue
        out.append({"class": k, "min": float(col.min()), "max": float(col.max()), "range": float(col.max() - col.min()),
                    "std": float(col.std(ddof=1)) if len(col) > 1 else None})
    return out


def divergence_epoch(epoch_digests: dict[str, dict[int, str]]) -> int | None:
    """First epoch at which the runs' weight digests are not all equal (None: they never part)."""
    epochs = sorted(set().union(*[set(d) for d in epoch_digests.values()])) if epoch_digests else []
    for e in epochs:
        vals = {d[e] for d in epoch_digests.values() if e in d}
        if len(vals) > 1:
            return e
    return None


def parse_digests_json(data: dict) -> dict[int, str]:
    """Per-epoch weight digests from a `repro/digests.json` document (either accepted shape)."""
    if isinstance(data.get("weights_epochs"), list):  # repro_mlflow/evidence.py: Digests.to_dict()
        start = 0 if str(data.get("epoch_numbering", "from 1")).endswith("0") else 1
        out = {i: str(d) for i, d in enumerate(data["weights_epochs"], start=start)}
        if start == 1 and data.get("weights_initial") and out:  # epoch 0: the weights before training
            out[0] = str(data["weights_initial"])
        return out
    if isinstance(data.get("weights"), dict):
        return {int(k): str(v) for k, v in data["weights"].items()}
    if isinstance(data.get("epochs"), list):
        return {int(e["epoch"]): str(e["weights"]) for e in data["epochs"] if "weights" in e}
    return {}


# ---------------------------------------------------------------- reading artifacts

def _local_path(artifact_uri: str, rel: str) -> str | None:
    p = urlparse(artifact_uri)
    if p.scheme in ("", "file"):
        path = os.path.join(p.path if p.scheme else artifact_uri, rel)
        return path
    return None


def fetch_artifact(artifact_uri: str, rel: str, tracking_uri: str | None) -> str | None:
    """A local path to the run's artifact `rel`, or None when the run has none."""
    local = _local_path(artifact_uri, rel)
    if local is not None:
        return local if os.path.isfile(local) else None
    import mlflow.artifacts

    try:
        d = tempfile.mkdtemp(prefix="repro-art-")
        return mlflow.artifacts.download_artifacts(artifact_uri=f"{artifact_uri.rstrip('/')}/{rel}", dst_path=d,
                                                   tracking_uri=tracking_uri)
    except Exception:  # noqa: BLE001  (absent artifact: every store words it differently)
        return None


def load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def prediction_evidence(runs: pd.DataFrame, tracking_uri: str | None, max_runs: int = 200) -> tuple[list[dict], list[str]]:
    """Per (example, config) with ≥2 runs carrying predictions/weights: churn, L2, per-class spread."""
    notes: list[str] = []
    rows: list[dict] = []
    sel = runs.sort_values(["example", "_config", "_env", "_repeat"]).head(max_runs)
    preds: dict[str, dict] = {}
    weights: dict[str, np.ndarray] = {}
    for rid, uri in zip(sel["run_id"], sel["artifact_uri"].fillna("")):
        if not uri:
            continue
        p = fetch_artifact(uri, PREDICTIONS, tracking_uri)
        if p:
            z = load_npz(p)
            probs = z.get("probabilities", z.get("probs"))
            labels = z.get("labels", z.get("y_true"))
            if probs is not None:
                preds[rid] = {"probs": probs, "labels": labels}
        w = fetch_artifact(uri, WEIGHTS, tracking_uri)
        if w:
            z = load_npz(w)
            weights[rid] = np.concatenate([np.ravel(z[k]).astype(np.float64) for k in sorted(z)]) if z else np.array([])
    if not preds and not weights:
        return [], notes + ["no run carries repro/predictions.npz or repro/weights.npz: no prediction-level evidence"]
    if len(runs) > max_runs:
        notes.append(f"prediction-level evidence read for the first {max_runs} of {len(runs)} runs (--max-artifact-runs)")
    for (ex, cfg), sub in sel.groupby(["example", "_config"], sort=True):
        ids = [r for r in sub["run_id"] if r in preds]
        wids = [r for r in sub["run_id"] if r in weights]
        if len(ids) < 2 and len(wids) < 2:
            continue
        row = {"example": ex, "config": cfg, "n_runs_predictions": len(ids), "n_runs_weights": len(wids),
               "mean_pairwise_churn": None, "max_pairwise_churn": None, "mean_pairwise_l2": None,
               "per_class": None, "n_examples": None, "test_se": None}
        if len(ids) >= 2:
            sizes = {len(preds[r]["probs"]) for r in ids}
            row["n_examples"] = sizes.pop() if len(sizes) == 1 else None
            labs = [predicted_labels(preds[r]["probs"]) for r in ids]
            pair = [churn(labs[i], labs[j]) for i, j in itertools.combinations(range(len(labs)), 2)]
            row["mean_pairwise_churn"], row["max_pairwise_churn"] = float(np.mean(pair)), float(np.max(pair))
            if all(preds[r]["labels"] is not None for r in ids):
                row["per_class"] = per_class_spread([per_class_accuracy(preds[r]["probs"], preds[r]["labels"]) for r in ids])
                if row["n_examples"]:  # the test set's own noise, resampling its examples (noise.py)
                    ses = [bootstrap_se(predicted_labels(preds[r]["probs"]) == np.asarray(preds[r]["labels"]))
                           for r in ids]
                    row["test_se"] = float(np.mean([x for x in ses if x is not None])) if any(ses) else None
        if len(wids) >= 2:
            shapes = {weights[r].shape for r in wids}
            if len(shapes) == 1:
                row["mean_pairwise_l2"] = mean_pairwise_l2([weights[r] for r in wids])
            else:
                notes.append(f"{ex} {cfg}: weight arrays differ in shape; no L2 distance")
        rows.append(row)
    return rows, notes


def divergence(runs: pd.DataFrame, parted: list[tuple[str, str]], tracking_uri: str | None,
               max_runs: int = 200) -> tuple[list[dict], list[str]]:
    """For each (example, config) whose runs end different: the first epoch their weight digests part.

    Per-epoch digests come from tags `repro.digest.weights.epoch.<n>`, else from the artifact
    `repro/digests.json` (read for at most `max_runs` runs in all).
    """
    rows, notes = [], []
    budget = max_runs
    ecols = [c for c in runs.columns if c.startswith(EPOCH_TAG)]
    # row positions per (example, config), and only the columns read: not a frame per config of every column
    by_cfg = runs.groupby(["example", "_config"], sort=False).indices
    read = runs[["run_id", "artifact_uri"] + ecols]
    for ex, cfg in parted:
        at = by_cfg.get((ex, cfg))
        if at is None:
            continue
        per_run: dict[str, dict[int, str]] = {}
        # no epoch tags and no artifact left to read: nothing to find run by run
        sub = read.iloc[at] if ecols or budget > 0 else read.iloc[:0]
        for rid, uri, *vals in sub.itertuples(index=False, name=None):
            d = {int(c[len(EPOCH_TAG):]): v for c, v in zip(ecols, vals)
                 if isinstance(v, str) and c[len(EPOCH_TAG):].isdigit()}
            if not d and budget > 0 and isinstance(uri, str) and uri:
                budget -= 1
                p = fetch_artifact(uri, DIGESTS, tracking_uri)
                if p:
                    try:
                        with open(p) as f:
                            d = parse_digests_json(json.load(f))
                    except (OSError, ValueError):
                        d = {}
            if d:
                per_run[rid] = d
        if len(per_run) < 2:
            rows.append({"example": ex, "config": cfg, "n_runs": len(per_run), "first_divergent_epoch": None,
                         "note": "no per-epoch weight digests on these runs"})
            continue
        e = divergence_epoch(per_run)
        last = max(max(d) for d in per_run.values())
        note = (f"weights agree through epoch {last}; outcomes part after it" if e is None else
                "differ before training (a seed or initialisation difference)" if e == 0 else None)
        rows.append({"example": ex, "config": cfg, "n_runs": len(per_run), "first_divergent_epoch": e, "note": note})
    if budget <= 0:
        notes.append(f"per-epoch digests read from artifacts for at most {max_runs} runs (--max-artifact-runs)")
    return rows, notes
