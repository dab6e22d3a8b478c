"""Spread of one outcome over runs, counting what is independent: n, distinct values, independent
outcomes, min, max, range, mean, std, CV, IQR, and a chi-square interval for the std.

Conventions (documented in docs/analysis.md). Bit-identical repeats are one outcome, not n: with
`units` (one key per run, e.g. config x environment), the independent outcomes are the distinct
(unit, value) pairs, and `mean`, `std`, `cv` and `iqr` are taken over them (one value per distinct
outcome); without `units` every run is its own unit. std is the sample std (ddof=1); CV = std / |mean|;
IQR = 75th - 25th percentile, linear interpolation. `std_ci` is the chi-square interval of a normal
sample's std, sqrt((k-1) s^2 / chi2_{1-a/2,k-1}) to sqrt((k-1) s^2 / chi2_{a/2,k-1}) over the k
independent outcomes, given only when k >= MIN_UNITS_CI (fewer would claim a precision they do not
have). No interval of the range is given: a bootstrap one can never exceed the observed range.
Missing (NaN) values are counted in `n_missing` and left out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

CONFIDENCE = 0.95
MIN_UNITS_CI = 5  # independent outcomes needed before a std interval is printed


def _f(x) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def independent(values, units=None) -> np.ndarray:
    """The independent outcomes: one value per distinct (unit, value) pair (NaN left out)."""
    x = np.asarray(values, dtype=float)
    keep = ~np.isnan(x)
    if units is None:
        return x[keep]
    u = np.asarray(units)[keep]
    if u.dtype.kind not in "iu":  # integer codes (one per unit) are compared as they are; else as text
        u = pd.Series(u.astype(object)).astype(str).to_numpy()
    t = pd.DataFrame({"u": u, "v": x[keep]}).drop_duplicates()
    return t["v"].to_numpy(dtype=float)


def std_interval(x: np.ndarray, confidence: float = CONFIDENCE) -> list[float] | None:
    """Chi-square interval [lo, hi] of the std of `x` (independent values); None below MIN_UNITS_CI."""
    k = len(x)
    if k < MIN_UNITS_CI:
        return None
    s2 = float(np.var(x, ddof=1))
    a = (1 - confidence) / 2
    lo = math.sqrt((k - 1) * s2 / sps.chi2.ppf(1 - a, k - 1))
    hi = math.sqrt((k - 1) * s2 / sps.chi2.ppf(a, k - 1))
    return [lo, hi]


def spread(values, units=None, confidence: float = CONFIDENCE) -> dict:
    """Every spread statistic of `values` (NaN = missing) as a JSON-ready dict; `units`: see the module."""
    arr = np.asarray(values, dtype=float)
    missing = int(np.isnan(arr).sum())
    x = arr[~np.isnan(arr)]
    n = len(x)
    ind = independent(arr, units)
    k = len(ind)
    out: dict = {"n": n, "n_missing": missing, "n_unique": int(len(np.unique(x))), "n_independent": k,
                 "min": None, "max": None, "range": None, "mean": None, "std": None, "cv": None, "iqr": None,
                 "std_ci": None, "confidence": confidence, "note": None}
    if n == 0:
        out["note"] = "no values" + (f" ({missing} missing)" if missing else "")
        return out
    mean = float(ind.mean())
    out.update(min=_f(x.min()), max=_f(x.max()), range=_f(x.max() - x.min()), mean=_f(mean),
               iqr=_f(np.percentile(ind, 75) - np.percentile(ind, 25)))
    if k == 1:
        out["std"] = 0.0 if n > 1 else None
        out["note"] = "one independent outcome: no spread to estimate" if n > 1 else "one value: no spread to estimate"
        return out
    std = float(ind.std(ddof=1))
    out["std"] = _f(std)
    out["cv"] = _f(std / abs(mean)) if mean != 0 else None
    if mean == 0:
        out["note"] = "mean is 0: no CV"
    out["std_ci"] = std_interval(ind, confidence)
    if out["std_ci"] is None:
        why = f"{k} independent outcomes: no std interval below {MIN_UNITS_CI}"
        out["note"] = f"{out['note']}; {why}" if out["note"] else why
    return out
