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
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert s["cv"] == pytest.approx(sps.variation(x, ddof=1))
    assert s["iqr"] == pytest.approx(sps.iqr(x))
    assert 0 <= s["std_ci"][0] <= s["std_ci"][1]
    assert s["n_boot"] == stats.N_BOOT and s["seed"] == stats.SEED
    assert 0 <= s["range_ci"][0] <= s["range_ci"][1] <= s["range"]


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
    assert s["std_ci"] == [0.0, 0.0] and s["range_ci"] == [0.0, 0.0]


def test_zero_mean_has_no_cv():
    s = stats.spread([-1.0, 1.0])
    assert s["cv"] is None and "CV" in s["note"]


@pytest.mark.parametrize("func,name", [(lambda a, axis=-1: np.std(a, ddof=1, axis=axis), 0),
                                       (lambda a, axis=-1: np.ptp(a, axis=axis), 1)])
def test_bootstrap_intervals_agree_with_scipy(func, name):
    rng = np.random.default_rng(42)
    x = np.round(rng.normal(0.9, 0.01, 40), 3)  # ties, as real metrics have
    ours = stats.bootstrap_std_range(x, n_boot=20000, seed=1)[name]
    ref = sps.bootstrap((x,), func, n_resamples=20000, method="percentile", random_state=7,
                        vectorized=True).confidence_interval
    width = ref.high - ref.low
    assert ours[0] == pytest.approx(ref.low, abs=0.06 * width)
    assert ours[1] == pytest.approx(ref.high, abs=0.06 * width)


def test_bootstrap_is_seeded():
    x = np.random.default_rng(0).normal(size=30)
    assert stats.bootstrap_std_range(x, 500, seed=3) == stats.bootstrap_std_range(x, 500, seed=3)
    assert stats.bootstrap_std_range(x, 500, seed=3) != stats.bootstrap_std_range(x, 500, seed=4)


def test_bootstrap_chunks_give_same_distribution(monkeypatch):
    x = np.arange(50, dtype=float)
    whole = stats.bootstrap_std_range(x, 4000, seed=0)
    monkeypatch.setattr(stats, "_DIRECT_MAX_CELLS", 50 * 7)  # 7 resamples per chunk
    chunked = stats.bootstrap_std_range(x, 4000, seed=0)
    assert chunked[0] == pytest.approx(whole[0], rel=0.05)


def test_metrics_that_tie_alike_share_draws_exactly():
    acc = np.array([0.9, 0.9, 0.91, 0.93, 0.91, 0.9])
    cache: dict = {}
    a = stats.bootstrap_std_range(acc, 300, seed=5, cache=cache)
    b = stats.bootstrap_std_range(1 - acc, 300, seed=5, cache=cache)  # same partition of the runs
    assert len(cache) == 1
    assert b == stats.bootstrap_std_range(1 - acc, 300, seed=5)  # sharing changes nothing
    assert b[0] == pytest.approx(a[0])  # std of 1-x resampled alike is the std of x


def test_many_distinct_values_lower_n_boot_and_say_so():
    x = np.arange(20_000, dtype=float)
    s = stats.spread(x, n_boot=1000)
    assert s["n_boot"] == stats.effective_n_boot(1000, 20_000) == max(stats.MIN_BOOT, stats.BOOT_BUDGET // 20_000)
    assert stats.spread(x[:100], n_boot=1000)["n_boot"] == 1000
