"""A timing from runs that overlapped in time on one machine is not a cost (analysis/cost.py)."""

from __future__ import annotations

import pandas as pd

from repro_mlflow.analysis import cost


def runs(times: list[tuple[int, int, str]], seconds: list[float], op: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(len(times))], "example": "mnist_convnet", "_env": "e1",
        "start_time": [t[0] for t in times], "end_time": [t[1] for t in times],
        "tags.repro.host": [t[2] for t in times], "params.seed": "1", "params.op_determinism": op,
        cost.METRIC: seconds,
    })


def test_overlap_is_per_host_and_both_runs_of_a_pair_count():
    df = runs([(0, 10, "a"), (5, 15, "a"), (20, 30, "a"), (5, 15, "b"), (31, 32, "a")], [1] * 5, ["true"] * 5)
    assert cost.overlapping(df).tolist() == [True, True, False, False, False]


def test_a_run_inside_a_long_one_overlaps_it_and_so_does_a_later_one():
    df = runs([(0, 100, "a"), (10, 20, "a"), (50, 60, "a"), (100, 110, "a")], [1] * 4, ["true"] * 4)
    assert cost.overlapping(df).tolist() == [True, True, True, False]


def test_overlapping_runs_are_left_out_of_the_cost():
    # sequential runs: deterministic 2 s, other 1 s; two overlapping runs would say the reverse
    times = [(0, 2, "a"), (3, 4, "a"), (5, 7, "a"), (8, 9, "a"), (100, 110, "a"), (100, 110, "a")]
    df = runs(times, [2, 1, 2, 1, 1, 9], ["true", "false", "true", "false", "true", "false"])
    [row] = cost.determinism_cost(df, n_boot=50)
    assert row["overlap"] == "excluded" and row["n_overlapping_excluded"] == 2
    assert row["n_deterministic"] == 2 and row["n_other"] == 2
    assert row["ratio"] == 2.0


def test_without_end_times_overlap_is_said_not_recorded():
    df = runs([(0, 2, "a"), (3, 4, "a")], [2, 1], ["true", "false"]).drop(columns="end_time")
    assert cost.overlapping(df) is None
    [row] = cost.determinism_cost(df, n_boot=50)
    assert row["overlap"] == "not recorded" and row["n_overlapping_excluded"] == 0
