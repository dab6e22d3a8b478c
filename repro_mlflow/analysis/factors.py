"""Which factor moves the outcome: environment tests and each swept factor's share of the variance.

- Environment tests: one-way ANOVA (`scipy.stats.f_oneway`), Kruskal-Wallis (`kruskal`) and Levene
  (`levene`, median-centred) over the runs grouped by environment. Done per config (runs of one config
  differ only by environment and repeat) and once pooled over all configs of an example, on the values
  minus their config's mean (scope "pooled"), so that config effects (seeds, threads) do not count as
  environment effects. Beside them: the between- and within-environment sums of squares.
- Factor shares: for each factor (a param, a `repro.*` tag, the environment, the config) with more than
  one value among an example's runs, eta squared = SS_between(levels) / SS_total of the primary metric,
  ranked. A factor that is unique per run (as many levels as runs) explains everything trivially and is
  left out with a note.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .levels import Levels, codes_of

NOT_FACTORS = ("tags.repro.sweep", "tags.repro.primary_metric", "tags.repro.config_hash", "tags.repro.repeat",
               "params.repeat", "tags.mlflow.project.entryPoint", "tags.mlflow.runName", "tags.repro.backend")


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def run_tests(groups: list[np.ndarray]) -> list[dict]:
    """ANOVA, Kruskal-Wallis and Levene over `groups` (arrays of values), each with statistic, p-value, note."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    vals = np.concatenate(groups) if groups else np.array([])
    codes = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    return coded_tests(vals, codes, len(groups))


def coded_tests(vals: np.ndarray, codes: np.ndarray, k: int) -> list[dict]:
    """`run_tests` over values and their group codes (0..k-1, every group non-empty).

    The statistics of `scipy.stats.f_oneway`, `kruskal` and `levene` (median-centred), computed on the
    codes in a few array passes with scipy's distributions: a call of the scipy functions costs 2-10 ms
    over 40 groups (it checks each group), and an example has a test of each per config and pooled.
    Values that are not all finite go to scipy itself. tests/analysis/test_factors.py holds them equal.
    """
    out = []
    n = len(vals)
    fast = n and np.isfinite(vals).all()
    for name in ("anova", "kruskal", "levene"):
        row = {"test": name, "statistic": None, "pvalue": None, "note": None}
        if k < 2:
            row["note"] = "fewer than two groups"
        elif np.all(vals == vals[0]):
            row["note"] = "all values identical: nothing to test"
        elif name != "kruskal" and n <= k:
            row["note"] = "one run per group: no within-group variance to compare"
        else:
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")
                try:
                    st, p = _statistic(name, vals, codes, k) if fast else _scipy(name, vals, codes, k)
                except ValueError as e:
                    st, p = float("nan"), float("nan")
                    row["note"] = str(e)
            if math.isinf(st):
                row["note"] = "infinite: no variance within groups, all of it between"
            elif math.isnan(st) and not row["note"]:
                row["note"] = "undefined: no variance within groups"
            row["statistic"], row["pvalue"] = _num(st), _num(p)
        out.append(row)
    return out


def _scipy(name: str, vals: np.ndarray, codes: np.ndarray, k: int) -> tuple[float, float]:
    fn = {"anova": stats.f_oneway, "kruskal": stats.kruskal, "levene": stats.levene}[name]
    res = fn(*[vals[codes == i] for i in range(k)])
    return float(res.statistic), float(res.pvalue)


def _f(y: np.ndarray, codes: np.ndarray, k: int) -> tuple[float, float]:
    """One-way ANOVA's F of `y` by `codes`, and its p-value."""
    n = len(y)
    cnt = np.bincount(codes, minlength=k)
    means = np.bincount(codes, weights=y, minlength=k) / cnt
    ssb = float((cnt * (means - y.mean()) ** 2).sum())
    ssw = float(((y - means[codes]) ** 2).sum())
    f = float(np.float64(ssb / (k - 1)) / np.float64(ssw / (n - k)))
    return f, (0.0 if math.isinf(f) else float(stats.f.sf(f, k - 1, n - k)))


def _statistic(name: str, vals: np.ndarray, codes: np.ndarray, k: int) -> tuple[float, float]:
    n = len(vals)
    if name == "anova":
        return _f(vals, codes, k)
    if name == "kruskal":
        ranks = stats.rankdata(vals)
        ties = stats.tiecorrect(ranks)
        if ties == 0:
            raise ValueError("All numbers are identical in kruskal")
        sums = np.bincount(codes, weights=ranks, minlength=k)
        h = (12.0 / (n * (n + 1)) * (sums ** 2 / np.bincount(codes, minlength=k)).sum() - 3 * (n + 1)) / ties
        return float(h), float(stats.chi2.sf(h, k - 1))
    # levene, centred on each group's median: the ANOVA of the absolute deviations
    order = np.lexsort((vals, codes))
    cnt = np.bincount(codes, minlength=k)
    start = np.concatenate(([0], np.cumsum(cnt)[:-1]))
    s = vals[order]
    med = (s[start + (cnt - 1) // 2] + s[start + cnt // 2]) / 2
    return _f(np.abs(vals - med[codes]), codes, k)


def sums_of_squares(values: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(SS_between, SS_within, SS_total) of `values` grouped by `labels`."""
    y = np.asarray(values, dtype=float)
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu" and (len(labels) == 0 or labels.min() >= 0):
        codes = labels  # already codes (factor_shares factorizes once)
    else:
        codes, _ = pd.factorize(labels.astype(object), use_na_sentinel=False)
    cnt = np.bincount(codes).astype(float)
    means = np.bincount(codes, weights=y) / cnt
    grand = y.mean()
    ssb = float((cnt * (means - grand) ** 2).sum())
    sst = float(((y - grand) ** 2).sum())
    return ssb, max(sst - ssb, 0.0), sst


def env_tests(runs: pd.DataFrame, primary: str, max_configs: int = 10) -> tuple[list[dict], list[str]]:
    """Environment tests, pooled per example and per config (the `max_configs` configs per example whose
    primary metric spreads most across environments)."""
    rows, notes = [], []
    metric = primary.removeprefix("metrics.")
    for ex, sub in runs.groupby("example", sort=True):
        centered = sub[primary] - sub.groupby("_config")[primary].transform("mean")
        scopes = [("pooled", None, centered.to_numpy(), sub["_env"].to_numpy())]
        g = sub.groupby("_config", sort=True)
        envs_n = g["_env"].nunique()
        rng_ = (g[primary].max() - g[primary].min())[envs_n > 1]
        cfgs = list(rng_.sort_values(ascending=False, kind="stable").index[:max_configs])
        if len(rng_) > max_configs:
            notes.append(f"{ex}: per-config environment tests for the {max_configs} of {len(rng_)} configs "
                         f"with the largest range (--max-configs)")
        for c in sorted(cfgs):
            s = g.get_group(c)
            scopes.append(("config", c, s[primary].to_numpy(), s["_env"].to_numpy()))
        for scope, cfg, vals, envs in scopes:
            codes, order = pd.factorize(envs, use_na_sentinel=False)
            vals = np.asarray(vals, dtype=float)
            ssb, ssw, sst = sums_of_squares(vals, codes)
            base = {"example": ex, "metric": metric, "scope": scope, "config": cfg, "n": int(len(vals)),
                    "n_groups": len(order), "ss_between": _num(ssb), "ss_within": _num(ssw),
                    "between_share": _num(ssb / sst) if sst > 0 else None}
            for t in coded_tests(vals, codes, len(order)):
                rows.append({**base, **t})
    return rows, notes


def factor_columns(runs: pd.DataFrame, extra: list[str] = (), by: str | None = None) -> list[str]:
    """Candidate factors: params and `repro.*` tags (not digests or bookkeeping), the user's, env, config.

    The environment column itself (`by`) appears once, as "environment".
    """
    cols = [c for c in runs.columns
            if (c.startswith("params.") or c.startswith("tags.repro.")) and c not in NOT_FACTORS
            and not c.startswith("tags.repro.digest.") and c != by]
    for e in extra:
        if e not in cols and e != by:
            cols.append(e)
    return ["_env", "_config"] + sorted(cols)


def factor_name(col: str) -> str:
    return {"_env": "environment", "_config": "config"}.get(col, col)


def factor_shares(runs: pd.DataFrame, primary: str, columns: list[str],
                  levels: Levels | None = None) -> tuple[list[dict], list[str]]:
    """Per example: eta squared of each factor with >1 level, ranked (largest first). `levels`: the run
    table's level codes, when the caller keeps them."""
    rows, notes = [], []
    metric = primary.removeprefix("metrics.")
    for ex, sub in runs.groupby("example", sort=True):
        vals = sub[primary].to_numpy(dtype=float)
        part = []
        for col in columns:
            if col not in sub.columns:
                continue
            codes = codes_of(levels, sub, col)  # missing is a level of its own
            k = int(codes.max()) + 1 if len(codes) else 0
            if k < 2:
                continue
            if k == len(sub):
                notes.append(f"{ex}: {factor_name(col)} is different on every run; no share computed")
                continue
            ssb, _ssw, sst = sums_of_squares(vals, codes)
            part.append({"example": ex, "metric": metric, "factor": factor_name(col), "n_levels": int(k),
                         "eta_squared": _num(ssb / sst) if sst > 0 else None, "ss_between": _num(ssb),
                         "ss_total": _num(sst), "note": None if sst > 0 else "no variance in the metric"})
        part.sort(key=lambda r: (-(r["eta_squared"] or 0.0), r["factor"]))
        for i, r in enumerate(part, 1):
            r["rank"] = i
        rows.extend(part)
    return rows, notes
