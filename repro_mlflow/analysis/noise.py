"""The test set's own sampling noise, to set a spread against (Bouthillier et al., MLSys 2021).

An accuracy measured on n test examples has the binomial standard error sqrt(p (1 - p) / n): another
test set of the same size would move it that much with no change to the model. n is read from what
the runs record, first found: the confusion-matrix counts logged beside the metric (`<prefix>tp +
fp + tn + fn`, e.g. `val_tp` for `val_accuracy`), a param or metric `n_test` / `n_val` / `test_size`,
or the number of labels in `repro/predictions.npz` (the prediction evidence). Where runs carry
`repro/predictions.npz` with labels, the SE is instead the bootstrap over those test examples (the accuracy
of each run's predictions resampled 200 times, averaged over runs): the test set itself, not a formula.
Only for metrics that are proportions (their name holds "accuracy"); otherwise, or with no recorded size,
nothing is claimed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SIZE_COLUMNS = ("n_test", "n_val", "test_size", "n_eval")


def is_proportion(metric: str) -> bool:
    return "accuracy" in metric.removeprefix("metrics.")


def test_size(runs: pd.DataFrame, metric: str, predictions: list[dict] | None = None) -> tuple[int | None, str | None]:
    """(n, where it came from) for `metric` (a column) of these runs (one example); (None, None) if unknown."""
    name = metric.removeprefix("metrics.")
    prefix = name[: name.index("accuracy")] if "accuracy" in name else ""
    cm = [f"metrics.{prefix}{k}" for k in ("tp", "fp", "tn", "fn")]
    if all(c in runs.columns for c in cm):
        tot = runs[cm].sum(axis=1, min_count=4).dropna()
        if len(tot) and tot.nunique() == 1 and tot.iloc[0] > 0:
            return int(tot.iloc[0]), "+".join(c.removeprefix("metrics.") for c in cm)
    for k in SIZE_COLUMNS:
        for c in (f"params.{k}", f"metrics.{k}", f"tags.repro.data.{k}"):
            if c in runs.columns:
                v = pd.to_numeric(runs[c], errors="coerce").dropna()
                if len(v) and v.nunique() == 1 and v.iloc[0] > 0:
                    return int(v.iloc[0]), c.split(".", 1)[1]
    sizes = {p.get("n_examples") for p in predictions or [] if p.get("n_examples")}
    if len(sizes) == 1:
        return int(sizes.pop()), "repro/predictions.npz"
    return None, None


def sampling_noise(runs: pd.DataFrame, metric: str, spread: dict, predictions: list[dict] | None = None) -> dict | None:
    """{n_test, source, se, std, ratio, within}: the spread's std against the binomial SE; None if not a proportion."""
    if not is_proportion(metric) or spread.get("mean") is None:
        return None
    std = spread.get("std")
    boot = [p for p in predictions or [] if p.get("test_se") is not None and p.get("n_examples")]
    if boot and len({p["n_examples"] for p in boot}) == 1:  # the test examples themselves, resampled
        n, se = int(boot[0]["n_examples"]), float(np.mean([p["test_se"] for p in boot]))
        ratio = (std / se) if (std is not None and se > 0) else None
        return {"n_test": n, "source": f"bootstrap over the {n} test examples of repro/predictions.npz", "se": se,
                "std": std, "ratio": ratio, "within": None if ratio is None else bool(ratio <= 1.0), "note": None}
    n, source = test_size(runs, metric, predictions)
    if n is None:
        return {"n_test": None, "source": None, "se": None, "std": spread.get("std"), "ratio": None, "within": None,
                "note": "test-set size not recorded (log n_test, or the confusion-matrix counts)"}
    p = min(max(float(spread["mean"]), 0.0), 1.0)
    se = math.sqrt(p * (1 - p) / n)
    ratio = (std / se) if (std is not None and se > 0) else None
    return {"n_test": n, "source": source, "se": se, "std": std, "ratio": ratio,
            "within": None if ratio is None else bool(ratio <= 1.0), "note": None}


