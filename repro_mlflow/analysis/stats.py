"""Spread of one outcome over runs: n, distinct values, min, max, range, mean, std, CV, IQR, bootstrap CIs.

Conventions (documented in docs/analysis.md): std is the sample std (ddof=1); CV = std / |mean|;
IQR = 75th − 25th percentile, linear interpolation (numpy's default, = `scipy.stats.iqr`); the
confidence intervals of std and range are percentile bootstrap intervals, `n_boot` resamples with
replacement of the n values from `numpy.random.default_rng(seed)`. Missing (NaN) values are counted
in `n_missing` and left out; fewer than two values give no std, CV or interval, with a `note`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

N_BOOT = 1000
SEED = 0
CONFIDENCE = 0.95
_DIRECT_MAX_CELLS = 5_000_000  # above this many n_boot × distinct-value cells, resample in chunks
BOOT_BUDGET = 1_000_000  # at most this many n_boot × distinct-value cells per interval ...
MIN_BOOT = 200  # ... but never fewer resamples than this


def effective_n_boot(n_boot: int, n_distinct: int) -> int:
    """Resamples actually drawn: `n_boot`, lowered for many distinct values to keep large stores fast
    (never below MIN_BOOT); the number used is reported with the interval."""
    return max(min(n_boot, MIN_BOOT), min(n_boot, BOOT_BUDGET // max(n_distinct, 1)))


def _f(x) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _resample_counts(codes: np.ndarray, k: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot × k multinomial counts: how often each distinct value is drawn in each resample."""
    n = len(codes)
    rng = np.random.default_rng(seed)
    p = np.bincount(codes, minlength=k) / n
    chunk = max(1, _DIRECT_MAX_CELLS // max(k, 1))
    return np.vstack([rng.multinomial(n, p, size=min(chunk, n_boot - s)) for s in range(0, n_boot, chunk)])


def bootstrap_std_range(values: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED,
                        confidence: float = CONFIDENCE, cache: dict | None = None) -> tuple[list[float], list[float]]:
    """Percentile bootstrap intervals ([lo, hi]) of the sample std (ddof=1) and of the range.

    Resampling n values with replacement is drawing multinomial counts over the distinct values,
    which is what is done (exact, and cheap when values tie, as repeatable runs do). Metrics whose
    runs tie the same way (same partition of the runs) share their draws through `cache`.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    codes, u = pd.factorize(x)  # distinct values in order of first appearance
    key = (n_boot, seed, hashlib.sha1(codes.tobytes()).hexdigest())
    counts = cache.get(key) if cache is not None else None
    if counts is None:
        counts = _resample_counts(codes, len(u), n_boot, seed)
        if cache is not None:
            cache[key] = counts
    uc = u - x.mean()
    s1 = counts @ uc
    s2 = counts @ (uc * uc)
    stds = np.sqrt(np.maximum((s2 - s1 * s1 / n) / (n - 1), 0.0))
    present = counts > 0
    ranges = np.where(present, u, -np.inf).max(axis=1) - np.where(present, u, np.inf).min(axis=1)
    a = (1 - confidence) / 2
    q = [100 * a, 100 * (1 - a)]
    return [float(v) for v in np.percentile(stds, q)], [float(v) for v in np.percentile(ranges, q)]


def spread(values, n_boot: int = N_BOOT, seed: int = SEED, confidence: float = CONFIDENCE,
           cache: dict | None = None) -> dict:
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
    out["n_boot"] = n_boot = effective_n_boot(n_boot, out["n_unique"])
    std_ci, range_ci = bootstrap_std_range(x, n_boot, seed, confidence, cache)
    out["std_ci"], out["range_ci"] = std_ci, range_ci
    return out
