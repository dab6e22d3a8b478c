"""Level codes made once per analysis give what factorizing each part anew gives."""

import numpy as np
import pandas as pd

from repro_mlflow.analysis.levels import Levels, joint_codes


def _table(n=500, seed=3):
    rng = np.random.default_rng(seed)
    pick = lambda vals: np.array(vals, dtype=object)[rng.integers(0, len(vals), n)]  # noqa: E731
    return pd.DataFrame({"env": pick(["a", "b", None, "c"]), "seed": pick(["1", "2", "3"]),
                         "gpu": pick(["A100", "V100", np.nan])}, dtype=object)


def test_parts_get_the_codes_factorize_gives_them():
    t = _table()
    lv = Levels(t)
    rng = np.random.default_rng(0)
    for part in (t, t[t["seed"] == "2"], t.iloc[rng.permutation(len(t))[:77]], t.copy(deep=False)):
        for col in ("env", "seed", "gpu"):
            assert np.array_equal(lv.codes(part, col), pd.factorize(part[col], use_na_sentinel=False)[0])


def test_a_keyed_table_keeps_the_codes_of_shared_columns_only():
    t = _table()
    lv = Levels(t)
    lv.codes(t, "env"), lv.codes(t, "seed")
    keyed = t.copy(deep=False)
    keyed["seed"] = np.where(keyed["seed"] == "1", "x", "y").astype(object)  # set anew: other values
    keyed["_config"] = keyed["seed"]
    lv.table = keyed
    for col in ("env", "seed", "_config"):
        assert np.array_equal(lv.codes(keyed, col), pd.factorize(keyed[col], use_na_sentinel=False)[0])
    other = pd.DataFrame({"env": ["z"]}, index=[10_000], dtype=object)  # rows not the table's
    assert list(lv.codes(other, "env")) == [0]


def test_joint_codes_tell_combinations_apart():
    a, b = np.array([0, 0, 1, 1, 0]), np.array([0, 1, 0, 1, 0])
    j = joint_codes([a, b])
    assert len(set(j)) == 4 and j[0] == j[4] and len(set(j[:4])) == 4
