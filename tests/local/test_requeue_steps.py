"""A requeued job logs on into the same local run: each metric step reaches the real run once."""

from __future__ import annotations

from repro_mlflow.runtime import offline
from repro_mlflow.runtime.replay import LocalRun


def _log(bundle, run_id: str, key: str, points: list[tuple[int, float, int]]) -> None:
    path = bundle / offline.STORE_DIR / "0" / run_id / "metrics" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.writelines(f"{ts} {value} {step}\n" for ts, value, step in points)


def test_a_restarted_attempt_repeats_no_step(tmp_path):
    _uri, local = offline.start(tmp_path, "real", None)
    _log(tmp_path, local, "loss", [(100 + s, 1.0 / (s + 1), s) for s in range(4)])  # attempt 1: steps 0..3
    _log(tmp_path, local, "acc", [(100, 0.1, 0), (101, 0.2, 0)])  # two points at one step, one attempt: both kept
    offline.requeued(tmp_path)
    _uri2, again = offline.start(tmp_path, "real", None)
    assert again == local  # the same local run
    _log(tmp_path, local, "loss", [(200 + s, 1.0 / (s + 1), s) for s in range(10)])  # attempt 2 starts over
    _log(tmp_path, local, "acc", [(200, 0.3, 0), (201, 0.9, 1)])
    _log(tmp_path, local, "final", [(300, 0.5, 0)])  # first logged by attempt 2
    points = LocalRun(tmp_path).new_points()
    assert [(m.step, m.timestamp) for m in points["loss"]] == [(s, 100 + s) for s in range(4)] + \
        [(s, 200 + s) for s in range(4, 10)]
    assert [(m.step, m.value) for m in points["acc"]] == [(0, 0.1), (0, 0.2), (1, 0.9)]
    assert [(m.step, m.value) for m in points["final"]] == [(0, 0.5)]
    # read incrementally (the mirror's way), the same points
    run = LocalRun(tmp_path)
    assert len(run.new_points("loss")["loss"]) == 10
    _log(tmp_path, local, "loss", [(400, 9.0, 3), (401, 0.01, 10)])
    assert [(m.step, m.value) for m in run.new_points("loss")["loss"]] == [(10, 0.01)]
