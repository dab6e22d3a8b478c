"""Environment tests and factor shares against scipy/numpy computed independently."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from repro_mlflow.analysis import factors, pipeline

from .store import frame, study


def test_tests_match_scipy_with_ties():
    g = [np.array([0.90, 0.90, 0.91]), np.array([0.92, 0.92, 0.92, 0.93]), np.array([0.90, 0.95])]
    rows = {r["test"]: r for r in factors.run_tests(g)}
    for name, fn in (("anova", sps.f_oneway), ("kruskal", sps.kruskal), ("levene", sps.levene)):
        ref = fn(*g)
        assert rows[name]["statistic"] == pytest.approx(ref.statistic)
        assert rows[name]["pvalue"] == pytest.approx(ref.pvalue)
        assert rows[name]["note"] is None


def test_identical_values_and_single_groups_are_reported():
    same = factors.run_tests([np.array([0.5, 0.5]), np.array([0.5])])
    assert all(r["statistic"] is None and "identical" in r["note"] for r in same)
    one = factors.run_tests([np.array([0.5, 0.6])])
    assert all("fewer than two groups" in r["note"] for r in one)
    singles = {r["test"]: r for r in factors.run_tests([np.array([0.5]), np.array([0.6])])}
    assert singles["anova"]["statistic"] is None and "one run per group" in singles["anova"]["note"]
    assert singles["kruskal"]["pvalue"] == pytest.approx(sps.kruskal([0.5], [0.6]).pvalue)


def test_repeatable_environments_that_disagree_give_infinite_f():
    rows = {r["test"]: r for r in factors.run_tests([np.array([0.5, 0.5]), np.array([0.6, 0.6])])}
    assert rows["anova"]["statistic"] is None and "infinite" in rows["anova"]["note"]


def test_pooled_test_removes_config_means():
    res, keyed = pipeline.analyse(frame(study()), pipeline.Options(artifacts=False))
    ex = res["examples"][0]
    pooled = {t["test"]: t for t in ex["tests"] if t["scope"] == "pooled"}
    runs = keyed.copy()
    y = runs["metrics.test_accuracy"] - runs.groupby("_config")["metrics.test_accuracy"].transform("mean")
    groups = [y[runs["_env"] == e].to_numpy() for e in ("a", "b", "c")]
    assert pooled["kruskal"]["statistic"] == pytest.approx(sps.kruskal(*groups).statistic)
    assert pooled["anova"]["pvalue"] == pytest.approx(sps.f_oneway(*groups).pvalue)
    per_cfg = [t for t in ex["tests"] if t["scope"] == "config" and t["config"] == "seed=1" and t["test"] == "levene"][0]
    s1 = runs[runs["_config"] == "seed=1"]
    ref = sps.levene(*[s1.loc[s1["_env"] == e, "metrics.test_accuracy"] for e in ("a", "b", "c")])
    assert per_cfg["statistic"] == pytest.approx(ref.statistic)
    var = [v for v in ex["env_variance"] if v["scope"] == "pooled"][0]
    allv = np.concatenate(groups)
    sst = ((allv - allv.mean()) ** 2).sum()
    ssb = sum(len(g) * (g.mean() - allv.mean()) ** 2 for g in groups)
    assert var["between_share"] == pytest.approx(ssb / sst)


def test_eta_squared_ranked():
    res, keyed = pipeline.analyse(frame(study()), pipeline.Options(artifacts=False))
    shares = res["examples"][0]["factors"]
    y = keyed["metrics.test_accuracy"].to_numpy()

    def eta(labels):
        labels = np.asarray(labels)
        ssb = sum((labels == lab).sum() * (y[labels == lab].mean() - y.mean()) ** 2 for lab in set(labels))
        return ssb / ((y - y.mean()) ** 2).sum()

    by = {s["factor"]: s for s in shares}
    assert by["environment"]["eta_squared"] == pytest.approx(eta(keyed["_env"]))
    assert by["params.seed"]["eta_squared"] == pytest.approx(eta(keyed["params.seed"]))
    assert by["tags.repro.site"]["eta_squared"] == pytest.approx(eta(keyed["tags.repro.site"]))
    assert "tags.repro.fp.env" not in by and "params.epochs" not in by  # the env itself once; constants out
    etas = [s["eta_squared"] for s in shares]
    assert etas == sorted(etas, reverse=True) and [s["rank"] for s in shares] == list(range(1, len(shares) + 1))


def test_constant_metric_has_no_share_and_says_so():
    runs = pd.DataFrame({"example": "x", "_env": ["a", "b"] * 2, "_config": "c", "metrics.m": 1.0,
                         "params.lr": ["1", "1", "2", "2"]})
    rows, _ = factors.factor_shares(runs, "metrics.m", ["_env", "params.lr"])
    assert all(r["eta_squared"] is None and r["note"] == "no variance in the metric" for r in rows)


def test_run_unique_factor_left_out():
    runs = pd.DataFrame({"example": "x", "_env": ["a", "a", "b"], "_config": "c", "metrics.m": [1.0, 2.0, 3.0],
                         "tags.repro.host": ["h1", "h2", "h3"]})
    rows, notes = factors.factor_shares(runs, "metrics.m", ["_env", "tags.repro.host"])
    assert [r["factor"] for r in rows] == ["environment"]
    assert any("tags.repro.host is different on every run" in n for n in notes)


def test_coded_tests_equal_scipy_on_many_group_shapes():
    """The array-pass statistics (`coded_tests`) against scipy's own functions, case by case."""
    rng = np.random.default_rng(7)
    cases = [[rng.normal(size=rng.integers(1, 9)) for _ in range(rng.integers(2, 12))] for _ in range(60)]
    cases += [[np.round(rng.normal(size=rng.integers(2, 30)), 1) for _ in range(rng.integers(2, 6))] for _ in range(30)]
    cases += [[np.array([0.5, 0.5]), np.array([0.6, 0.6])], [np.array([0.5, 0.5, 0.7]), np.array([0.6])],
              [np.array([0.5] * 4), np.array([0.5, 0.6])], [rng.normal(size=5000), rng.normal(0.01, 1, 3000)]]
    checked = 0
    for g in cases:
        rows = {r["test"]: r for r in factors.run_tests(g)}
        for name, fn in (("anova", sps.f_oneway), ("kruskal", sps.kruskal), ("levene", sps.levene)):
            if rows[name]["note"] and "one run per group" in rows[name]["note"]:
                continue
            with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")
                ref = fn(*g)
            if np.isfinite(ref.statistic):
                assert rows[name]["statistic"] == pytest.approx(float(ref.statistic), rel=1e-9, abs=1e-12), (name, g)
                assert rows[name]["pvalue"] == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-300), (name, g)
                checked += 1
            else:
                assert rows[name]["statistic"] is None and rows[name]["note"], (name, g)
    assert checked > 250


def test_values_that_are_not_finite_give_no_statistic_but_a_note():
    g = [np.array([0.5, np.nan, 0.6]), np.array([0.7, 0.8])]
    rows = {r["test"]: r for r in factors.run_tests(g)}
    assert rows["anova"]["statistic"] is None and rows["anova"]["note"]  # NaN propagates, as scipy says
