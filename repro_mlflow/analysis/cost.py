"""Cost of determinism: how much slower training is with a determinism switch in its deterministic setting.

Per example and environment, for each two-valued determinism factor (`repro.det.<name>` tag, else the
`<name>` param): op_determinism (deterministic: true), tf32, onednn, xla (deterministic: false) and
threads (deterministic: 1, against the other thread count). `ratio` = median `train_seconds` of the
deterministic runs / median of the others (above 1: determinism costs time), with a percentile
bootstrap interval from `scipy.stats.bootstrap` (both groups resampled independently). The medians are
marginal: other swept factors are pooled within each setting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRIC = "metrics.train_seconds"
# factor → the deterministic value (as text, lower case); threads: "1"
FACTORS = {"op_determinism": "true", "tf32": "false", "onednn": "false", "xla": "false", "threads": "1"}


def _column(df: pd.DataFrame, name: str) -> str | None:
    for c in (f"tags.repro.det.{name}", f"params.{name}"):
        if c in df.columns and df[c].notna().any():
            return c
    return None


def _norm(v) -> str:
    s = str(v).strip().lower()
    if s.endswith(".0") and s[:-2].isdigit():
        s = s[:-2]
    return {"1.0": "1", "0.0": "0"}.get(s, s)


def _ratio_ci(det: np.ndarray, other: np.ndarray, n_boot: int, seed: int, confidence: float) -> list[float] | None:
    if len(det) < 2 or len(other) < 2 or (np.ptp(det) == 0 and np.ptp(other) == 0):
        return None
    from scipy.stats import bootstrap

    def ratio(a, b, axis=-1):
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    res = bootstrap((det, other), ratio, n_resamples=n_boot, confidence_level=confidence, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None


def determinism_cost(runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> list[dict]:
    """One row per (example, environment, factor) where the factor has its deterministic value and one other."""
    if METRIC not in runs.columns:
        return []
    rows = []
    have = runs[runs[METRIC].notna()]
    for name, det_value in FACTORS.items():
        col = _column(have, name)
        if col is None:
            continue
        for (ex, env), sub in have.groupby(["example", "_env"], sort=True):
            lv = sub[col].map(_norm)
            levels = sorted(lv.dropna().unique())
            if len(levels) != 2 or det_value not in levels:
                continue
            other_value = next(v for v in levels if v != det_value)
            det = sub.loc[lv == det_value, METRIC].to_numpy(dtype=float)
            oth = sub.loc[lv == other_value, METRIC].to_numpy(dtype=float)
            md, mo = float(np.median(det)), float(np.median(oth))
            ci = _ratio_ci(det, oth, n_boot, seed, confidence)
            rows.append({"example": ex, "environment": env, "factor": name, "deterministic": det_value,
                         "other": other_value, "n_deterministic": int(len(det)), "n_other": int(len(oth)),
                         "median_deterministic": md, "median_other": mo,
                         "ratio": md / mo if mo > 0 else None, "ratio_ci": ci,
                         "note": None if ci else "too few runs (or no spread) for an interval"})
    return rows
