"""Spread of one outcome over runs: n, distinct values, min, max, range, mean, std, CV, IQR, bootstrap CIs.

Conventions (documented in docs/analysis.md): std is the sample std (ddof=1); CV = std / |mean|;
IQR = 75th − 25th percentile, linear interpolation (numpy's default, = `scipy.stats.iqr`); the
confidence intervals of std and range are percentile bootstrap intervals, `n_boot` resamples with
replacement of the n values from `numpy.random.default_rng(seed)`. Missing (NaN) values are counted
in `n_missing` and left out; fewer than two values give no std, CV or interval, with a `note`.
"""

from __future__ import annotations

import math

import numpy as np

N_BOOT = 1000
SEED = 0
CONFIDENCE = 0.95
_DIRECT_MAX_CELLS = 5_000_000  # above this many n_boot × distinct-value cells, resample in chunks


def _f(x) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def bootstrap_std_range(values: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED,
                        confidence: float = CONFIDENCE) -> tuple[list[float], list[float]]:
    """Percentile bootstrap intervals ([lo, hi]) of the sample std (ddof=1) and of the range.

    Resampling n values with replacement is drawing multinomial counts over the distinct values,
    which is what is done (exact, and cheap when values tie, as repeatable runs do).
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    rng = np.random.default_rng(seed)
    u, cnt = np.unique(x, return_counts=True)
    center = x.mean()
    uc = u - center
    stds = np.empty(n_boot)
    ranges = np.empty(n_boot)
    chunk = max(1, _DIRECT_MAX_CELLS // max(len(u), 1))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        counts = rng.multinomial(n, cnt / n, size=m)
        s1 = counts @ uc
        s2 = counts @ (uc * uc)
        var = (s2 - s1 * s1 / n) / (n - 1)
        stds[start:start + m] = np.sqrt(np.maximum(var, 0.0))
        present = counts > 0
        hi = np.where(present, u, -np.inf).max(axis=1)
        lo = np.where(present, u, np.inf).min(axis=1)
        ranges[start:start + m] = hi - lo
    a = (1 - confidence) / 2
    q = [100 * a, 100 * (1 - a)]
    return [float(v) for v in np.percentile(stds, q)], [float(v) for v in np.percentile(ranges, q)]


def spread(values, n_boot: int = N_BOOT, seed: int = SEED, confidence: float = CONFIDENCE) -> dict:
    """Every spread statistic of `values` (NaN = missing) as a JSON-ready dict."""
    arr = np.asarray(values, dtype=float)
    missing = int(np.isnan(arr).sum())
    x = arr[~np.isnan(arr)]
    n = len(x)
    out: dict = {"n": n, "n_missing": missing, "n_unique": int(len(np.unique(x))), "min": None, "max": None,
                 "range": None, "mean": None, "std": None, "cv": None, "iqr": None, "std_ci": None,
                 "range_ci": None, "n_boot": n_boot, "seed": seed, "confidence": confidence, "note": None}
    if n == 0:
        out["note"] = "no values" + (f" ({missing} missing)" if missing else "")
        return out
    mean = float(x.mean())
    out.update(min=_f(x.min()), max=_f(x.max()), range=_f(x.max() - x.min()), mean=_f(mean),
               iqr=_f(np.percentile(x, 75) - np.percentile(x, 25)))
    if n == 1:
        out["note"] = "one value: no spread to estimate"
        return out
    std = float(x.std(ddof=1))
    out["std"] = _f(std)
    out["cv"] = _f(std / abs(mean)) if mean != 0 else None
    if mean == 0:
        out["note"] = "mean is 0: no CV"
    std_ci, range_ci = bootstrap_std_range(x, n_boot, seed, confidence)
    out["std_ci"], out["range_ci"] = std_ci, range_ci
    return out
