"""Cost of determinism: how much slower training is with a determinism switch in its deterministic setting.

Per example and environment, for each two-valued determinism factor (the swept `<name>` param, else the
`repro.det.<name>` tag of runs without one): op_determinism (deterministic: true), tf32, onednn, xla
(deterministic: false) and threads (deterministic: 1, against the other thread count). Runs are compared
only within a stratum, the runs whose other parameters are all equal (seed, backend, the other switches),
so a switch is never credited with what another factor did (e.g. `repro.det.xla`, which differs between
Keras backends). `ratio` = the median over strata of (median `train_seconds` of the deterministic runs /
median of the others): above 1, determinism costs time; its interval is a stratified percentile
bootstrap (runs resampled within each stratum and setting). `median_deterministic` / `median_other` are
the medians of the matched runs.

A placebo checks the timings: where the runs carry outcome signatures (`_sig`), a stratum in which
the switch changed no bits (the same outcomes with it on and off) costs nothing by construction, so
its ratio must be 1 within noise. `placebo_ratio` / `placebo_ci` are computed over those strata, and
`ratio` / `ratio_ci` over the strata where the switch did change the bits (all strata when none is a
placebo). When a placebo's interval excludes 1, the timings of that example and environment are not
to be trusted (machines shared, runs overlapping): `reliable` is False on every row of it, and the
verdict says so instead of giving a cost.

A timing from runs that overlapped in time on one machine (tag `repro.host`, start and end times) is not
a cost: such runs are left out before anything is compared (`n_overlapping_excluded` per row). Where the
runs do not record their end times (an older `runs.csv`), `overlap` says "not recorded".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRIC = "metrics.train_seconds"
HOST = "tags.repro.host"
# factor → the deterministic value (as text, lower case); threads: "1"
FACTORS = {"op_determinism": "true", "tf32": "false", "onednn": "false", "xla": "false", "threads": "1"}


def _column(df: pd.DataFrame, name: str) -> str | None:
    for c in (f"params.{name}", f"tags.repro.det.{name}"):  # what was swept, else what a run recorded
        if c in df.columns and df[c].notna().any():
            return c
    return None


def _norm(v) -> str:
    s = str(v).strip().lower()
    if s.endswith(".0") and s[:-2].isdigit():
        s = s[:-2]
    return {"1.0": "1", "0.0": "0"}.get(s, s)


def _ratio_ci(pairs: list[tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int, confidence: float) -> list[float] | None:
    """Stratified percentile bootstrap of the median over strata of median(det) / median(other)."""
    if all(len(d) < 2 and len(o) < 2 for d, o in pairs) or all(np.ptp(d) == 0 and np.ptp(o) == 0 for d, o in pairs):
        return None
    rng = np.random.default_rng(seed)

    def resampled_medians(x: np.ndarray) -> np.ndarray:
        return np.median(x[rng.integers(0, len(x), size=(n_boot, len(x)))], axis=1)

    ratios = np.stack([resampled_medians(d) / resampled_medians(o) for d, o in pairs])  # strata x n_boot
    stat = np.median(ratios, axis=0)
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(stat, [alpha, 1 - alpha]))
    return [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None


def overlapping(runs: pd.DataFrame) -> pd.Series | None:
    """True for each run whose [start, end] overlaps another run's on the same host; None when not recorded."""
    if HOST not in runs.columns or "end_time" not in runs.columns:
        return None
    start = pd.to_numeric(runs["start_time"], errors="coerce")
    end = pd.to_numeric(runs["end_time"], errors="coerce")
    if end.isna().all():
        return None
    out = pd.Series(False, index=runs.index)
    for _, idx in runs.groupby(runs[HOST].astype(str), sort=False).groups.items():
        s, e = start.loc[idx], end.loc[idx]
        order = s.sort_values(kind="stable").index
        latest_end = -np.inf
        prev = None
        for i in order:
            if pd.isna(s[i]) or pd.isna(e[i]):
                continue
            if s[i] < latest_end:  # starts before an earlier run ended: both overlapped
                out[i] = True
                if prev is not None:
                    out[prev] = True
            if e[i] > latest_end:
                latest_end, prev = e[i], i
    return out


def _strata_columns(df: pd.DataFrame, col: str, name: str) -> list[str]:
    """What must be equal for two runs to be compared: every param but the repeat and the factor itself."""
    return sorted(c for c in df.columns if c.startswith("params.") and c not in ("params.repeat", col, f"params.{name}"))


def _changed_bits(d: pd.DataFrame, o: pd.DataFrame) -> bool | None:
    if "_sig" not in d.columns:
        return None
    return set(d["_sig"]) != set(o["_sig"])


def _ratio(pairs: list[tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int, confidence: float):
    per = [float(np.median(d) / np.median(o)) for d, o in pairs if np.median(o) > 0]
    return (float(np.median(per)) if per else None), (_ratio_ci(pairs, n_boot, seed, confidence) if pairs else None)


def determinism_cost(runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> list[dict]:
    """One row per (example, environment, factor) where the factor has its deterministic value and one other
    within at least one stratum of otherwise equal runs."""
    if METRIC not in runs.columns:
        return []
    rows = []
    have = runs[runs[METRIC].notna()]
    over = overlapping(have)
    excluded = over if over is not None else pd.Series(False, index=have.index)
    have_all, have = have, have[~excluded]
    for name, det_value in FACTORS.items():
        col = _column(have, name)
        if col is None:
            continue
        strata_cols = _strata_columns(have, col, name)
        for (ex, env), sub in have.groupby(["example", "_env"], sort=True):
            lv = sub[col].map(_norm)
            levels = sorted(lv.dropna().unique())
            if len(levels) != 2 or det_value not in levels:
                continue
            other_value = next(v for v in levels if v != det_value)
            strata = sub.groupby(strata_cols, dropna=False, sort=True).groups.values() if strata_cols else [sub.index]
            cost_pairs, placebo_pairs, det_all, oth_all = [], [], [], []
            for idx in strata:
                s = sub.loc[idx]
                ds, os_ = s[lv.loc[idx] == det_value], s[lv.loc[idx] == other_value]
                if len(ds) and len(os_):
                    pair = (ds[METRIC].to_numpy(dtype=float), os_[METRIC].to_numpy(dtype=float))
                    (placebo_pairs if _changed_bits(ds, os_) is False else cost_pairs).append(pair)
                    det_all.append(pair[0])
                    oth_all.append(pair[1])
            if not det_all:
                continue
            ratio, ci = _ratio(cost_pairs or placebo_pairs, n_boot, seed, confidence)
            p_ratio, p_ci = _ratio(placebo_pairs, n_boot, seed, confidence) if placebo_pairs else (None, None)
            rows.append({"example": ex, "environment": env, "factor": name, "deterministic": det_value,
                         "other": other_value, "strata": len(det_all), "strata_changed_bits": len(cost_pairs),
                         "n_deterministic": int(sum(map(len, det_all))), "n_other": int(sum(map(len, oth_all))),
                         "median_deterministic": float(np.median(np.concatenate(det_all))),
                         "median_other": float(np.median(np.concatenate(oth_all))),
                         "ratio": ratio, "ratio_ci": ci, "placebo_ratio": p_ratio, "placebo_ci": p_ci,
                         "placebo_ok": None if p_ci is None else bool(p_ci[0] <= 1.0 <= p_ci[1]),
                         "overlap": "not recorded" if over is None else "excluded",
                         "n_overlapping_excluded": int(excluded[(have_all["example"] == ex)
                                                                & (have_all["_env"] == env)].sum()),
                         "reliable": None,
                         "note": None if ci else "too few runs (or no spread) for an interval"})
    bad = {(r["example"], r["environment"]) for r in rows if r["placebo_ok"] is False}
    for r in rows:
        if "_sig" in runs.columns:
            r["reliable"] = (r["example"], r["environment"]) not in bad
    return rows
