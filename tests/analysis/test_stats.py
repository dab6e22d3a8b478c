"""Spread statistics against numpy/scipy computed independently."""

import numpy as np
import pytest
from scipy import stats as sps

from repro_mlflow.analysis import stats


def test_spread_matches_numpy_and_scipy():
    x = np.array([0.9912, 0.9905, 0.9912, 0.9899, 0.9921, 0.9912])  # ties included
    s = stats.spread(x)
    assert s["n"] == 6 and s["n_missing"] == 0
    assert s["n_unique"] == len(set(x.tolist())) == 4
    assert s["min"] == x.min() and s["max"] == x.max()
    assert s["range"] == pytest.approx(np.ptp(x))
    assert s["mean"] == pytest.approx(np.mean(x))
    assert s["std"] == pytest.approx(np.std(x, ddof=1))  # every run its own unit here
    assert s["cv"] == pytest.approx(sps.variation(x, ddof=1))
    assert s["iqr"] == pytest.approx(sps.iqr(x))
    assert s["n_independent"] == 6  # no units given: every run is its own
    assert 0 <= s["std_ci"][0] <= s["std"] <= s["std_ci"][1]


def test_missing_values_are_counted_not_zeroed():
    s = stats.spread([0.5, np.nan, 0.7, np.nan])
    assert s["n"] == 2 and s["n_missing"] == 2
    assert s["mean"] == pytest.approx(0.6)
    assert s["min"] == 0.5  # not 0.0
    assert s["std"] == pytest.approx(np.nanstd([0.5, np.nan, 0.7], ddof=1))


def test_all_missing_is_reported():
    s = stats.spread([np.nan, np.nan])
    assert s["n"] == 0 and s["n_missing"] == 2
    assert s["mean"] is None and s["std"] is None
    assert "no values" in s["note"]


def test_one_value_has_no_std():
    s = stats.spread([0.8])
    assert s["n"] == 1 and s["range"] == 0.0 and s["std"] is None and s["std_ci"] is None
    assert "one value" in s["note"]


def test_identical_values_have_zero_spread_and_zero_intervals():
    s = stats.spread([0.97] * 5)
    assert s["n_unique"] == 1 and s["range"] == 0.0 and s["std"] == 0.0
    assert s["std_ci"] == [0.0, 0.0]


def test_zero_mean_has_no_cv():
    s = stats.spread([-1.0, 1.0])
    assert s["cv"] is None and "CV" in s["note"]


def test_chi_square_interval_covers_the_true_std_at_small_n():
    """At 6 independent outcomes the interval covers a normal sample's std about 95 % of the time."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(2000):
        lo, hi = stats.spread(rng.normal(0.8, 0.02, 6))["std_ci"]
        hits += lo <= 0.02 <= hi
    assert 0.93 <= hits / 2000 <= 0.97


def test_interval_is_scipys_chi_square_formula():
    x = np.array([0.81, 0.84, 0.79, 0.86, 0.80, 0.83, 0.82])
    s2, k = np.var(x, ddof=1), len(x)
    lo, hi = stats.spread(x)["std_ci"]
    assert lo == pytest.approx(np.sqrt((k - 1) * s2 / sps.chi2.ppf(0.975, k - 1)))
    assert hi == pytest.approx(np.sqrt((k - 1) * s2 / sps.chi2.ppf(0.025, k - 1)))


def test_bit_identical_repeats_are_one_outcome():
    """36 runs, 3 distinct values in 3 groups: 3 independent outcomes, std over them, no interval."""
    values = [0.90] * 12 + [0.91] * 12 + [0.95] * 12
    units = ["a"] * 12 + ["b"] * 12 + ["c"] * 12
    s = stats.spread(values, units)
    assert (s["n"], s["n_unique"], s["n_independent"]) == (36, 3, 3)
    assert s["std"] == pytest.approx(np.std([0.90, 0.91, 0.95], ddof=1))
    assert s["mean"] == pytest.approx(np.mean([0.90, 0.91, 0.95]))
    assert s["std_ci"] is None and "no std interval below 5" in s["note"]
    assert "range_ci" not in s


def test_one_value_repeated_in_two_groups_counts_twice():
    s = stats.spread([0.9, 0.9, 0.9, 0.9], ["a", "a", "b", "b"])
    assert s["n_independent"] == 2 and s["std"] == 0.0
