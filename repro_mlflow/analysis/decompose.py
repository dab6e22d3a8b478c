"""Hardware versus software versus the swept factors, in one additive model of the primary metric.

Per example, over the independent outcomes (one row per distinct value of a config x environment: a
bit-identical repeat is not a new observation), an additive linear model with one term per factor:
`hardware` (`repro.fp.hw`), `software` (`repro.software`, else `repro.fp.sw`), and each swept
param and `repro.det.*` tag with more than one value (the environment itself when there are no
fingerprints). Columns that split the outcomes the same way are aliased: merged into one term named
with all their names. Each term gets its type-II sum of squares (the residual sum of squares gained by
adding it to all the others), its degrees of freedom, its `share` SS / SS_total (the type-II shares and the residual's need not
add up to 1 when terms overlap), partial eta squared SS/(SS + SS_res) and
partial omega squared (SS - df MS_res) / (SS + (N - df) MS_res), with the noncentral-F interval of the
latter (exact for normal residuals; its lower end 0 when the term's F is within chance). A term that the others determine (df 0: e.g. a setting swept only together with
another) is `confounded` and gets no share (a recorded `repro.det.*` setting that the swept ones
determine is left out and counted). Pairs of terms of which not every combination was run
are listed as `not_crossed`: their shares rest on the additive model alone.

Interactions: where some cell of the main terms holds more than one outcome (replication, so a residual
that is not itself an interaction), every crossed pair of terms gets a two-way interaction term
(`hardware x seed`), so an effect of the seed that differs by hardware is named instead of swelling the
residual. Type-II as usual: a main term's SS is taken over the terms that do not contain it (its
interactions left out), an interaction's over everything else. Without replication (every cell of the main
terms seen once, e.g. repeatable runs of a full factorial) the residual is the interactions themselves
(Tukey's one outcome per cell), so none is fitted and `interactions` says why.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.optimize import brentq

from . import labels
from .levels import joint_codes

FP_HW, FP_SW = "tags.repro.fp.hw", "tags.repro.fp.sw"
MAX_CELLS = 500_000  # outcomes x model columns fitted at most (larger: not fitted, a note says so)
NOT_FACTORS = ("params.repeat", "tags.repro.det.seed.global")


def _short(col: str) -> str:
    for p in ("params.", "tags.repro.det.", "tags.repro.", "tags."):
        if col.startswith(p):
            return col[len(p):]
    return col


def terms(runs: pd.DataFrame, extra: list[str] = ()) -> list[tuple[str, str]]:
    """(name, column) of each candidate term, hardware and software first, the user's `--factor` columns last."""
    out = []
    hw = FP_HW if FP_HW in runs.columns and runs[FP_HW].notna().all() else None
    sw = next((c for c in (labels.SOFTWARE, FP_SW) if c in runs.columns and runs[c].notna().all()), None)
    if hw:
        out.append(("hardware", hw))
    if sw:
        out.append(("software", sw))
    if not hw and not sw:
        out.append(("environment", "_env"))
    for c in sorted(runs.columns):
        if (c.startswith("params.") or c.startswith("tags.repro.det.")) and c not in NOT_FACTORS:
            out.append((_short(c), c))
    out += [(_short(c), c) for c in extra if c in runs.columns and c not in {col for _, col in out}]
    return out


def _codes(s: pd.Series) -> np.ndarray:
    """Level codes in order of appearance (equal partitions, equal codes); values equal as text are one level,
    missing is a level of its own. Factorized on the values first, so that only the distinct ones are made text."""
    codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=False, sort=False)
    text = pd.Series(uniques, dtype=object).fillna("<NA>").astype(str)
    return pd.factorize(text, sort=False)[0][codes]


def _design(codes: list[np.ndarray], n: int) -> np.ndarray:
    """Intercept (n rows) plus one indicator column per level beyond the first of each term."""
    cols = [np.ones(n)]
    for c in codes:
        k = int(c.max()) + 1
        cols += [(c == j).astype(float) for j in range(1, k)]
    return np.column_stack(cols)


def _fit(X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(RSS, rank) of the least-squares fit."""
    if X.shape[1] == 0:
        return float(((y - y.mean()) ** 2).sum()), 0
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r), int(rank)


TOL = 1e-12  # sums of squares below TOL x SS_total are rounding, not variance


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The codes of the cells of two terms (their interaction)."""
    return pd.factorize(a.astype(np.int64) * (int(b.max()) + 1) + b, sort=True)[0]


def _shares(y: np.ndarray, codes: list[np.ndarray],
            pairs: list[tuple[int, int]] = ()) -> list[tuple[float, int, float, float, float, int]]:
    """Per term, main terms then the interactions `pairs` (indices into `codes`): (SS, df, SS_res, partial eta²,
    partial omega², df_res), type II: each term over the terms that do not contain it."""
    n = len(y)
    inter = [_pair(codes[i], codes[j]) for i, j in pairs]
    full = _design(codes + inter, n)
    rss, rank = _fit(full, y)
    tol = TOL * float(((y - y.mean()) ** 2).sum())
    rss = 0.0 if rss <= tol else rss
    df_res = n - rank
    ms_res = rss / df_res if df_res > 0 else 0.0
    out = []
    for i in range(len(codes) + len(pairs)):
        if i < len(codes):  # a main term: against the terms that do not contain it, with and without it
            others = [c for k, c in enumerate(codes) if k != i] + [c for (a, b), c in zip(pairs, inter) if i not in (a, b)]
            rss_i, rank_i = _fit(_design(others, n), y)
            rss_w, rank_w = _fit(_design(others + [codes[i]], n), y) if pairs else (rss, rank)
        else:  # an interaction: against everything else
            k = i - len(codes)
            rss_i, rank_i = _fit(_design(codes + inter[:k] + inter[k + 1:], n), y)
            rss_w, rank_w = rss, rank
        rss_w = 0.0 if rss_w <= tol else rss_w
        df = rank_w - rank_i
        ss = max(rss_i - rss_w, 0.0)
        ss = 0.0 if ss <= tol else ss
        eta = ss / (ss + rss) if (ss + rss) > 0 else None
        omega = (ss - df * ms_res) / (ss + (n - df) * ms_res) if df > 0 and (ss + (n - df) * ms_res) > 0 else None
        out.append((ss, df, rss, eta, omega, df_res))
    return out


def decompose(runs: pd.DataFrame, primary: str, confidence: float = 0.95, extra: list[str] = ()) -> dict:
    """The model of one example's primary metric: terms with their shares, confounded and aliased names."""
    units = runs.drop_duplicates(["_config", "_env", primary])
    y = units[primary].to_numpy(dtype=float)
    out = {"n_runs": int(len(runs)), "n_independent": int(len(units)), "terms": [], "confounded": [],
           "not_crossed": [], "interactions": None, "residual_df": None, "residual_share": None, "recorded_determined": 0, "note": None}
    merged: dict[bytes, dict] = {}
    cand = [(nm, col) for nm, col in terms(units, extra) if col in units.columns]
    codes = {col: _codes(units[col]) for _, col in cand}
    params = [col for _, col in cand if col.startswith("params.")]
    # the swept params' joint level: one code per distinct combination
    swept = joint_codes([codes[c] for c in params]) if params else None
    for nm, col in cand:
        c = codes[col]
        if c.max() < 1:
            continue
        key = c.tobytes()
        if key in merged:
            merged[key]["names"].append(nm)
            merged[key]["columns"].append(col)
        else:
            merged[key] = {"names": [nm], "columns": [col], "codes": c, "n_levels": int(c.max()) + 1}
    ts = []
    for t in merged.values():  # a recorded setting that the swept params fix (not one of them): what they set
        if swept is not None and all(c.startswith("tags.repro.det.") for c in t["columns"]) \
                and _determines(swept, t["codes"]):
            out["recorded_determined"] += 1
        else:
            ts.append(t)
    for t in ts:  # aliased columns named together, each name once
        t["names"] = list(dict.fromkeys(t["names"]))
        t["name"] = " = ".join(t["names"])
    if not ts or len(y) < 3 or np.ptp(y) == 0:
        out["note"] = "no variance in the metric" if len(y) and np.ptp(y) == 0 else "nothing varies"
        return out
    # in order (hardware, software, the swept params, then the recorded repro.det.* settings): a term the
    # terms kept before it determine adds no degrees of freedom: confounded, named, given no share. A
    # recorded setting determined so is a consequence of what was swept (the thread pools a backend
    # sets): left out, counted in `recorded_determined`.
    p = 1 + sum(t["n_levels"] - 1 for t in ts)
    if len(y) * p > MAX_CELLS:
        out["note"] = f"too large for the additive model ({len(y)} outcomes x {p} columns): not fitted"
        return out
    keep, n_rows = list(ts), len(y)
    while True:  # drop, one at a time, a term that the others determine (df 0), coarsest and last first
        full = np.linalg.matrix_rank(_design([u["codes"] for u in keep], n_rows))
        zero = [t for t in keep if np.linalg.matrix_rank(_design([u["codes"] for u in keep if u is not t], n_rows)) == full]
        if not zero:
            break
        t = max(zero, key=lambda t: (-t["n_levels"], ts.index(t)))
        keep = [u for u in keep if u is not t]
        by = [u for u in keep if _determines(u["codes"], t["codes"])]
        out["confounded"].append({"term": t["name"], "with": [u["name"] for u in by] or ["the other terms"]})
    codes = [t["codes"] for t in keep]
    crossed = []
    for (i, t1), (j, t2) in itertools.combinations(enumerate(keep), 2):
        seen = len(set(zip(t1["codes"], t2["codes"])))
        if seen < t1["n_levels"] * t2["n_levels"]:
            out["not_crossed"].append({"terms": [t1["name"], t2["name"]],
                                       "combinations": seen, "possible": t1["n_levels"] * t2["n_levels"]})
        else:
            crossed.append((i, j))
    pairs, out["interactions"] = _interactions(y, codes, crossed, [t["name"] for t in keep])
    base = _shares(y, codes, pairs)
    sst = float(((y - y.mean()) ** 2).sum())
    described = [(t["name"], t["columns"], t["n_levels"], t["names"], False) for t in keep]
    for i, j in pairs:
        t1, t2 = keep[i], keep[j]
        described.append((f"{t1['name']} x {t2['name']}", t1["columns"] + t2["columns"],
                          t1["n_levels"] * t2["n_levels"], [f"{t1['name']} x {t2['name']}"], True))
    for (name, cols, levels, names, is_inter), (ss, df, rss, eta, omega, df_res) in zip(described, base):
        ci = omega_interval(ss, df, rss, df_res, len(y), confidence)
        out["terms"].append({"term": name, "columns": cols, "n_levels": levels,
                             "df": df, "ss": ss, "share": ss / sst if sst > 0 else None, "partial_eta_squared": eta,
                             "partial_omega_squared": omega, "omega_ci": ci, "aliased": len(names) > 1 and not is_inter,
                             "names": names, "interaction": is_inter})
        out["residual_df"] = df_res
        out["residual_share"] = rss / sst if sst > 0 else None
    if out["residual_df"] == 0:
        out["note"] = "no residual degrees of freedom: every outcome fitted exactly (omega squared undefined)"
    out["terms"].sort(key=lambda r: -(r["share"] or 0.0))
    return out


def omega_interval(ss: float, df: int, rss: float, df_res: int, n: int,
                   confidence: float = 0.95) -> list[float] | None:
    """Noncentral-F interval of a partial omega squared (Steiger 2004): the noncentrality parameters lambda for
    which the observed F = (SS/df) / (SS_res/df_res) sits at the upper and lower tail, as lambda / (lambda + N).
    None without residual degrees of freedom; [1, 1] for a term with variance where the residual has none."""
    if df <= 0 or df_res <= 0:
        return None
    if rss <= 0:
        return [1.0, 1.0] if ss > 0 else None
    f = (ss / df) / (rss / df_res)
    a = (1 - confidence) / 2

    def lam(p: float) -> float | None:  # the lambda at which P(F' <= f) = p (0 when even lambda = 0 puts f below it)
        def g(x: float) -> float:
            return float(sps.ncf.cdf(f, df, df_res, x)) - p
        if g(0.0) <= 0:
            return 0.0
        hi = max(10.0, 2.0 * f * df)
        while g(hi) > 0:
            hi *= 2
        if not np.isfinite(g(hi)) or hi > 1e9:
            return None
        return float(brentq(g, 0.0, hi, xtol=1e-10 * hi))

    lo, up = lam(1 - a), lam(a)
    if lo is None or up is None:  # F beyond what the noncentral F evaluates: its normal approximation
        est = max(df * f - df, 0.0)
        sd = float(np.sqrt(2 * (df + 2 * est) + est**2 * 2 / df_res))
        z = float(sps.norm.ppf(1 - a))
        lo, up = max(est - z * sd, 0.0), est + z * sd
    return [lo / (lo + n), up / (up + n)]


def _interactions(y: np.ndarray, codes: list[np.ndarray], crossed: list[tuple[int, int]],
                  names: list[str]) -> tuple[list[tuple[int, int]], dict]:
    """The crossed pairs that get an interaction term, and {"fitted": [names], "note"}: none without replication
    (every cell of the main terms seen once: the residual is the interactions), none that adds no degree of
    freedom, none past MAX_CELLS."""
    info: dict = {"fitted": [], "note": None}
    if not crossed:
        info["note"] = "no crossed pair of terms" if len(codes) > 1 else "one term"
        return [], info
    cells = len(set(zip(*codes)))
    if cells >= len(y):
        info["note"] = "not fitted: every cell of the terms has one outcome (the residual is the interactions)"
        return [], info
    pairs: list[tuple[int, int]] = []
    cols = [*codes]
    rank = np.linalg.matrix_rank(_design(cols, len(y)))
    for i, j in crossed:
        c = _pair(codes[i], codes[j])
        width = _design(cols + [c], len(y)).shape[1]
        if len(y) * width > MAX_CELLS:
            info["note"] = "some not fitted: too many cells"
            break
        r = np.linalg.matrix_rank(_design(cols + [c], len(y)))
        if r > rank and len(y) - r > 0:
            pairs.append((i, j))
            cols.append(c)
            rank = r
            info["fitted"].append(f"{names[i]} x {names[j]}")
    return pairs, info


def _determines(a: np.ndarray, b: np.ndarray) -> bool:
    """Every level of `a` has a single level of `b` (b is a function of a)."""
    return len(set(zip(a, b))) == len(set(a))


def share_text(t: dict) -> str:
    w = t["partial_omega_squared"]
    if w is None:
        e = t["partial_eta_squared"]
        return f"{t['term']} eta {e:.2f}" if e is not None else f"{t['term']} –"
    ci = f" [{max(t['omega_ci'][0], 0):.2f}, {max(t['omega_ci'][1], 0):.2f}]" if t.get("omega_ci") else ""
    return f"{t['term']} {max(w, 0):.2f}{ci}"
