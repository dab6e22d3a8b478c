"""bench/determinism_cost.py, its pieces: the cells (placebo included), the shuffled order, the ratio and
its bootstrap interval on synthetic timings, the record, and the refusal of a busy machine. A real
measurement takes minutes (`--quick`) to a quarter of an hour: it is run by hand, not here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("determinism_cost", ROOT / "bench/determinism_cost.py")
dc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("determinism_cost", dc)  # dataclasses look their module up
_spec.loader.exec_module(dc)


def test_cells_flip_one_switch_each_and_the_placebo_copies_the_baseline():
    cells = dc.plan()
    by = {(c.framework, c.name): dict(c.settings) for c in cells}
    assert sorted(n for f, n in by if f == "jax") == ["baseline", "op_determinism=false", "placebo", "threads=2"]
    assert sorted(n for f, n in by if f == "torch") == ["baseline", "onednn=false", "op_determinism=false",
                                                        "placebo", "threads=2"]
    for (fw, name), settings in by.items():
        base = by[(fw, "baseline")]
        changed = {k for k in base if settings[k] != base[k]}
        assert changed == (set() if name in ("baseline", "placebo") else {name.split("=")[0]}), (fw, name)
    assert "--onednn=false" in next(c for c in cells if c.name == "onednn=false").args()


def test_the_order_holds_every_run_once_shuffled_and_reproducible():
    cells = dc.plan()
    seq = dc.order(cells, 5, seed=7)
    assert sorted((c.framework, c.name, r) for c, r in seq) == sorted(
        (c.framework, c.name, r) for c in cells for r in range(5))
    assert seq == dc.order(cells, 5, seed=7) and seq != dc.order(cells, 5, seed=8)
    firsts = [c for c, _ in seq[:len(cells)]]  # interleaved: not one cell after the other
    assert len(set(firsts)) > len(cells) // 2


def test_the_ratio_and_its_interval_on_synthetic_timings():
    rng = np.random.default_rng(0)
    same = rng.normal(10, 0.3, 10)
    ratio, ci = dc.ratio_interval(same[:5], same[5:])
    assert ci[0] <= 1.0 <= ci[1] and 0.9 < ratio < 1.1
    other = rng.normal(10, 0.1, 5)
    ratio, ci = dc.ratio_interval(2 * other + rng.normal(0, 0.05, 5), other)
    assert 1.9 < ci[0] <= ratio <= ci[1] < 2.1
    assert dc.ratio_interval(np.array([3.0]), np.array([2.0, 2.5]))[1] is None  # one run: no interval
    assert dc.ratio_interval(np.array([3.0, 3.0]), np.array([2.0, 2.0])) == (1.5, None)  # no spread


def _fake_runner(costs: dict[str, float], seed: int = 1):
    rng = np.random.default_rng(seed)

    def run(cell, example=None, params=None, store=None):
        t = costs.get(cell.name, 10.0) * (1 + rng.normal(0, 0.01))
        return {"rc": 0, "wall_s": t + 8, "train_seconds": t, "error": None}
    return run


def test_the_record_gives_each_switch_its_ratio_and_the_placebo_holds_one():
    cells = dc.plan(("tensorflow",))
    rec = dc.measure(cells, 5, 3, "mnist_convnet", {}, 0.2,
                     _fake_runner({"op_determinism=false": 8.0, "onednn=false": 13.0, "threads=2": 5.0}), log=lambda s: None)
    rows = {r["factor"]: r for r in rec["rows"]}
    assert len(rec["runs"]) == 5 * len(cells) and rec["warmup_runs"] == 1  # the warm-up run is not recorded
    assert rows["op_determinism"]["ratio"] == pytest.approx(1.25, rel=0.03)  # deterministic = baseline, 10 s vs 8 s
    assert rows["onednn"]["ratio"] == pytest.approx(1.3, rel=0.03) and rows["onednn"]["deterministic"] == "false"
    assert rows["threads"]["ratio"] == pytest.approx(2.0, rel=0.03)
    assert all(r["excludes_1"] for f, r in rows.items() if f != "placebo")
    assert rows["placebo"]["placebo_ok"] is True and rec["placebo_ok"] is True
    assert [(r["cell"], r["repeat"]) for r in rec["runs"]] == [(c.name, r) for c, r in dc.order(cells, 5, 3)]
    assert all({"load_before", "load_after", "foreign_cores", "busy"} <= set(r) for r in rec["runs"])
    assert {"at_start", "at_end", "runs_busy"} <= set(rec["load"]) and rec["machine"]["cpus"] and rec["started_utc"]
    assert rec["quiet"] == (rec["load"]["runs_busy"] == 0)


def test_a_placebo_that_moves_fails():
    rec = dc.measure(dc.plan(("jax",)), 5, 3, "mnist_convnet", {}, 0.2, _fake_runner({"placebo": 14.0}),
                     log=lambda s: None)
    assert rec["placebo_ok"] is False


def test_a_busy_machine_is_refused_in_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dc.os, "getloadavg", lambda: (3.0, 2.0, 1.0))
    out = tmp_path / "cost.json"
    assert dc.main(["--out", str(out)], runner=_fake_runner({})) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "load average 3.00 > 0.5" in err and not out.exists()
    # measured anyway with --allow-load: written, and flagged (exit 3)
    assert dc.main(["--quick", "--allow-load", "--seed", "1", "--out", str(out)], runner=_fake_runner({})) == 3
    rec = json.loads(out.read_text())
    assert rec["allow_load"] is True and rec["quick"] is True and rec["load"]["at_start"][0] == 3.0
    assert sorted({r["cell"] for r in rec["runs"]}) == ["baseline", "op_determinism=false", "placebo"]
    assert len(rec["runs"]) == 2 * 3 and {r["factor"] for r in rec["rows"]} == {"op_determinism", "placebo"}
    assert "WARNING: the machine was not idle" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_runs_nothing(capsys):
    assert dc.main(["--dry-run", "--seed", "1"], runner=None) == 0
    out = capsys.readouterr().out
    assert out.startswith("14 cells x 5 repeats = 70 runs of mnist_convnet") and "min on an idle machine" in out
    assert dc.main(["--dry-run", "--placebo", "tensorflow", "--frameworks", "tensorflow,jax"], runner=None) == 0
    assert capsys.readouterr().out.startswith("8 cells x 5 repeats = 40 runs")


def test_the_committed_record_is_its_own_runs():
    """Once measured (the next idle session), the record's rows follow from its runs and it holds a placebo."""
    path = ROOT / "bench/results/determinism_cost.json"
    if not path.is_file():
        pytest.skip("bench/results/determinism_cost.json not measured yet (needs an idle machine)")
    rec = json.loads(path.read_text())
    assert rec["repeats"] >= 5 and not rec["quick"] and any(r["factor"] == "placebo" for r in rec["rows"])
    for c in rec["cells"]:
        times = [r["train_seconds"] for r in rec["runs"] if (r["framework"], r["cell"]) == (c["framework"], c["cell"])
                 and r["rc"] == 0]
        assert sorted(times) == sorted(c["train_seconds"]) and len(times) >= 5, c["cell"]
