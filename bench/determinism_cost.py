"""The cost of determinism on this machine, measured by runs of its own (issue 25 item 5).

    python bench/determinism_cost.py [--quick] [--repeats N] [--allow-load] [--dry-run] [--out FILE]

What it times: one example (default `mnist_convnet` at the CPU study's size: 2,000 bundled digits,
2 epochs; its convolutions are where op determinism changes bits), its `train_seconds` metric (the
fit alone, without the framework's import), each run a fresh `python -m projects.<example>` into a
private sqlite store (MLFLOW_RUN_ID: the bench made the run, so it reads its metric back exactly).
Runs go one at a time (the `parallel: 1` of the issue: nothing of the bench overlaps), in an order
shuffled over all cells and repeats (seed recorded), so drift of the machine spreads over every cell;
one unrecorded warm-up run per framework comes first (libraries into the page cache).

Cells, per framework (Keras on tensorflow, jax, torch): the baseline (op_determinism=true, onednn=true,
threads=1) and each determinism switch flipped from it: op_determinism=false; onednn=false (TensorFlow
and PyTorch; JAX has no such switch); threads=2 (one thread is the deterministic setting). The placebo
cell runs the baseline's settings again under another name: the ratio baseline / placebo costs nothing
by construction, so its interval must hold 1, or the timings are not to be trusted (`placebo_ok`).
A row = one framework and switch: median `train_seconds` with the deterministic setting / median with
the other; above 1, determinism costs time; its 95 % interval is scipy.stats.bootstrap's (percentile,
two independent samples resampled). `repeats` runs per cell (default 5).

The machine must be otherwise idle: with a 1-minute load average above --max-load (0.5) at the start
it refuses in one line (exit 2, nothing written) unless --allow-load. During each run it records the
load average before and after and the CPU that other processes used (the machine's busy time from
/proc/stat less this bench's and its run's own CPU time, in cores): a run where others used more
than --max-foreign (0.2) cores is flagged `busy`; any busy run makes the record `quiet: false`, is
said on stderr and ends with exit 3 (the record is still written, flagged). The load average itself
cannot judge a run: the bench's own run puts about one process into it.

Writes bench/results/determinism_cost.json (or --out): the machine, the load, the dates, every run,
every cell and every row. `--quick` is a smoke test (TensorFlow only, baseline, placebo and op determinism off, 256 digits,
1 epoch, 2 repeats: 6 runs, written to a temporary file unless --out). `--dry-run` prints the plan and the estimated time.
Earlier figures (from the CPU study's own timings, two runs at a time on shared cores; they fail
the placebo) are kept in bench/results/determinism_cost_from_cpu_study.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("tensorflow", "jax", "torch")
BASELINE = {"op_determinism": True, "onednn": True, "threads": 1}
# switch -> (its deterministic value, the other value, the frameworks it is a switch of)
SWITCHES = {"op_determinism": (True, False, FRAMEWORKS),
            "onednn": (False, True, ("tensorflow", "torch")),
            "threads": (1, 2, FRAMEWORKS)}
EXAMPLES = {  # the CPU study's sizes (analysis/cpu_study/conf/example/), and the quick ones
    "mnist_convnet": {"epochs": 2, "batch_size": 128, "data": "bundled", "n_train": 2000},
    "imdb_bilstm": {"epochs": 1, "batch_size": 32, "maxlen": 64, "data": "bundled", "n_train": 1000, "n_test": 2000},
    "imbalanced_classification": {"epochs": 5, "batch_size": 2048, "data": "bundled", "rows": 175000},
}
QUICK = {"mnist_convnet": {"epochs": 1, "batch_size": 128, "data": "bundled", "n_train": 256}}
# seconds per run (fresh interpreter: import, data, fit, logging) of mnist_convnet at the study size, threads=1:
# the CPU time of one timed run per framework on this 2-core machine (2026-12-06, under load 5-24, nice 10), which
# is its wall time on an idle machine give or take contention; --dry-run's estimate adds them up
EST_RUN_S = {"tensorflow": 13.4, "jax": 24.5, "torch": 14.6}
PLACEBO = "placebo"


@dataclass(frozen=True)
class Cell:
    """One setting of one framework; `name` tells the placebo from the baseline it copies."""
    framework: str
    name: str
    settings: tuple[tuple[str, object], ...]

    def args(self) -> list[str]:
        return [f"--{k}={str(v).lower()}" for k, v in self.settings] + [f"--keras_backend={self.framework}"]


def plan(frameworks: tuple[str, ...] = FRAMEWORKS, switches: tuple[str, ...] = tuple(SWITCHES),
         placebo: tuple[str, ...] = FRAMEWORKS) -> list[Cell]:
    """The cells: per framework the baseline, each of its switches flipped, and (where asked) the placebo."""
    cells = []
    for fw in frameworks:
        base = tuple(BASELINE.items())
        cells.append(Cell(fw, "baseline", base))
        if fw in placebo:
            cells.append(Cell(fw, PLACEBO, base))
        for s in switches:
            det, other, fws = SWITCHES[s]
            if fw in fws:
                flipped = other if BASELINE[s] == det else det
                cells.append(Cell(fw, f"{s}={str(flipped).lower()}", tuple({**BASELINE, s: flipped}.items())))
    return cells


def order(cells: list[Cell], repeats: int, seed: int) -> list[tuple[Cell, int]]:
    """Every (cell, repeat) once, in an order shuffled by `seed` (all cells interleaved)."""
    runs = [(c, r) for c in cells for r in range(repeats)]
    perm = np.random.default_rng(seed).permutation(len(runs))
    return [runs[i] for i in perm]


def ratio_interval(det: np.ndarray, other: np.ndarray, seed: int = 0, confidence: float = 0.95,
                   n_resamples: int = 9999) -> tuple[float, list[float] | None]:
    """median(det) / median(other) and its bootstrap interval (None with under 2 runs a side or no spread)."""
    from scipy import stats

    det, other = np.asarray(det, dtype=float), np.asarray(other, dtype=float)
    ratio = float(np.median(det) / np.median(other))
    if min(len(det), len(other)) < 2 or (np.ptp(det) == 0 and np.ptp(other) == 0):
        return ratio, None

    def stat(x, y, axis=-1):
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    res = stats.bootstrap((det, other), stat, vectorized=True, paired=False, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return ratio, ([lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None)


def rows(cells: list[Cell], times: dict[Cell, list[float]], seed: int = 0) -> list[dict]:
    """One row per framework and switch (deterministic setting against the other), and the placebo rows."""
    out = []
    by = {(c.framework, c.name): c for c in cells}
    for c in cells:
        if c.name == "baseline":
            continue
        base = by[(c.framework, "baseline")]
        if c.name == PLACEBO:
            factor, det_cell, other_cell, det_v, other_v = PLACEBO, base, c, "baseline", "baseline again"
        else:
            factor = c.name.split("=")[0]
            det, other, _ = SWITCHES[factor]
            det_cell, other_cell = (base, c) if BASELINE[factor] == det else (c, base)
            det_v, other_v = str(det).lower(), str(other).lower()
        d, o = times.get(det_cell, []), times.get(other_cell, [])
        if not d or not o:
            continue
        ratio, ci = ratio_interval(np.array(d), np.array(o), seed=seed)
        row = {"framework": c.framework, "factor": factor, "deterministic": det_v, "other": other_v,
               "n_deterministic": len(d), "n_other": len(o), "median_deterministic": float(np.median(d)),
               "median_other": float(np.median(o)), "ratio": ratio, "ratio_ci": ci,
               "excludes_1": None if ci is None else not (ci[0] <= 1.0 <= ci[1])}
        if factor == PLACEBO:
            row["placebo_ok"] = None if ci is None else not row["excludes_1"]
        out.append(row)
    return out


def _busy_jiffies() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine since boot, from /proc/stat's cpu line."""
    f = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def _own_cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@dataclass
class Probe:
    """The machine around one run: load average before/after, CPU used by other processes, in cores."""
    load_before: float = 0.0
    load_after: float = 0.0
    foreign_cores: float = 0.0
    steal_cores: float = 0.0
    _t: tuple = field(default=(), repr=False)

    def start(self) -> None:
        self.load_before = os.getloadavg()[0]
        self._t = (time.monotonic(), *_busy_jiffies(), _own_cpu())

    def stop(self) -> None:
        t0, b0, s0, c0 = self._t
        t1, (b1, s1), c1 = time.monotonic(), _busy_jiffies(), _own_cpu()
        hz = os.sysconf("SC_CLK_TCK")
        wall = max(t1 - t0, 1e-9)
        self.foreign_cores = max(0.0, ((b1 - b0) / hz - (c1 - c0)) / wall)
        self.steal_cores = (s1 - s0) / hz / wall
        self.load_after = os.getloadavg()[0]


def run_once(cell: Cell, example: str, params: dict, store: str) -> dict:
    """One fresh-interpreter run of the example with the cell's settings; its train_seconds read back."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    exp = client.get_experiment_by_name("determinism-cost") or client.get_experiment(
        client.create_experiment("determinism-cost"))
    run = client.create_run(exp.experiment_id, tags={"bench.cell": f"{cell.framework}/{cell.name}"})
    env = dict(os.environ, MLFLOW_TRACKING_URI=store, MLFLOW_RUN_ID=run.info.run_id, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", f"projects.{example}", "--seed=1", *cell.args(),
           *(f"--{k}={v}" for k, v in params.items())]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    metrics = client.get_run(run.info.run_id).data.metrics
    return {"rc": proc.returncode, "wall_s": wall, "train_seconds": metrics.get("train_seconds"),
            "error": None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1:]}


def _machine() -> dict:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu_model": model, "usable_cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "platform": platform.platform()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def measure(cells: list[Cell], repeats: int, seed: int, example: str, params: dict, max_foreign: float,
            runner: Callable[[Cell], dict], log: Callable[[str], None] = print, warmup: int = 1) -> dict:
    """Run every (cell, repeat) in shuffled order, probing the machine around each; return the record.
    First `warmup` unrecorded runs of each framework's baseline (the files it reads come into the page cache)."""
    started, load_start = _now(), list(os.getloadavg())
    for cell in [c for c in cells if c.name == "baseline"] * warmup:
        res = runner(cell)
        log(f"[warm-up] {cell.framework:10s} baseline  wall {res['wall_s']:6.1f} s (not recorded)")
    runs, times = [], {c: [] for c in cells}
    sequence = order(cells, repeats, seed)
    for i, (cell, rep) in enumerate(sequence, 1):
        probe = Probe()
        probe.start()
        res = runner(cell)
        probe.stop()
        busy = probe.foreign_cores > max_foreign
        runs.append({"order": i, "framework": cell.framework, "cell": cell.name, "repeat": rep, **res,
                     "load_before": round(probe.load_before, 2), "load_after": round(probe.load_after, 2),
                     "foreign_cores": round(probe.foreign_cores, 3), "steal_cores": round(probe.steal_cores, 3),
                     "busy": busy})
        if res["rc"] == 0 and res["train_seconds"] is not None:
            times[cell].append(float(res["train_seconds"]))
        log(f"[{i}/{len(sequence)}] {cell.framework:10s} {cell.name:22s} train {res['train_seconds'] or float('nan'):7.2f} s"
            f"  wall {res['wall_s']:6.1f} s  load {probe.load_before:.2f}->{probe.load_after:.2f}"
            f"  others {probe.foreign_cores:.2f} cores{'  BUSY' if busy else ''}{'' if res['rc'] == 0 else '  FAILED'}")
    n_busy = sum(r["busy"] for r in runs)
    failed = sum(r["rc"] != 0 for r in runs)
    cell_rows = [{"framework": c.framework, "cell": c.name, "settings": dict(c.settings), "train_seconds": times[c],
                  "median_train_seconds": float(np.median(times[c])) if times[c] else None,
                  "median_wall_s": float(np.median([r["wall_s"] for r in runs if r["framework"] == c.framework
                                                    and r["cell"] == c.name]))} for c in cells]
    result_rows = rows(cells, times, seed)
    placebo = [r for r in result_rows if r["factor"] == PLACEBO]
    return {"benchmark": "determinism_cost",
            "method": "own runs, one at a time (parallel 1), order shuffled over cells and repeats; median train_seconds "
                      "with the deterministic setting / with the other, scipy.stats.bootstrap percentile 95 % interval",
            "example": example, "params": params, "repeats": repeats, "order_seed": seed, "warmup_runs": warmup,
            "machine": _machine(), "host": platform.node(), "started_utc": started, "ended_utc": _now(),
            "load": {"at_start": [round(v, 2) for v in load_start], "at_end": [round(v, 2) for v in os.getloadavg()],
                     "max_foreign": max_foreign, "runs_busy": n_busy,
                     "max_foreign_cores": max((r["foreign_cores"] for r in runs), default=0.0)},
            "quiet": n_busy == 0, "runs_failed": failed,
            "placebo_ok": None if not placebo or any(p["placebo_ok"] is None for p in placebo)
            else all(p["placebo_ok"] for p in placebo),
            "rows": result_rows, "cells": cell_rows, "runs": runs}


def estimate_s(cells: list[Cell], repeats: int, quick: bool) -> float:
    """Idle seconds for the plan: per run (and warm-up run) the framework's estimate, 0.6 of it at the quick size."""
    warmups = 0 if quick else sum(EST_RUN_S[c.framework] for c in cells if c.name == "baseline")
    return (sum(EST_RUN_S[c.framework] for c in cells) * repeats + warmups) * (0.6 if quick else 1.0)


def main(argv: list[str] | None = None, runner: Callable[[Cell, str, dict, str], dict] = run_once) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    p.add_argument("--quick", action="store_true", help="smoke test: TensorFlow, 3 cells, tiny size, 2 repeats")
    p.add_argument("--example", default="mnist_convnet", choices=sorted(EXAMPLES))
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--placebo", default=",".join(FRAMEWORKS), help="frameworks with a placebo cell (default: every one)")
    p.add_argument("--repeats", type=int, default=None, help="runs per cell (default 5; 2 with --quick)")
    p.add_argument("--seed", type=int, default=None, help="seed of the run order (default: from the clock, recorded)")
    p.add_argument("--max-load", type=float, default=0.5, help="refuse above this 1-minute load average at the start")
    p.add_argument("--max-foreign", type=float, default=0.2, help="flag a run where other processes used more cores")
    p.add_argument("--allow-load", action="store_true", help="measure on a busy machine anyway (the record says so)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated time; run nothing")
    p.add_argument("--out", default=None, help="the record (default bench/results/determinism_cost.json; --quick: a temp file)")
    a = p.parse_args(argv)
    frameworks = tuple(f for f in a.frameworks.split(",") if f)
    if a.quick:
        frameworks = ("tensorflow",) if a.frameworks == ",".join(FRAMEWORKS) else frameworks
    bad = [f for f in (*frameworks, *a.placebo.split(",")) if f and f not in FRAMEWORKS]
    repeats = a.repeats if a.repeats is not None else (2 if a.quick else 5)
    if bad or not frameworks or repeats < 2:
        print(f"determinism_cost: frameworks among {', '.join(FRAMEWORKS)} and --repeats 2 or more "
              f"(got {a.frameworks!r}, {repeats})", file=sys.stderr)
        return 2
    params = (QUICK.get(a.example) or EXAMPLES[a.example]) if a.quick else EXAMPLES[a.example]
    placebo = tuple(f for f in a.placebo.split(",") if f)
    cells = plan(frameworks, ("op_determinism",) if a.quick else tuple(SWITCHES), placebo)
    seed = a.seed if a.seed is not None else int(time.time()) % 2**31
    est = estimate_s(cells, repeats, a.quick)
    if a.dry_run:
        print(f"{len(cells)} cells x {repeats} repeats = {len(cells) * repeats} runs of {a.example} {params}, "
              f"one at a time, order seed {seed}; about {est / 60:.0f} min on an idle machine")
        for c in cells:
            print(f"  {c.framework:10s} {c.name:22s} {' '.join(c.args())}")
        return 0
    load = os.getloadavg()[0]
    if load > a.max_load and not a.allow_load:
        print(f"determinism_cost: the machine is busy (1-minute load average {load:.2f} > {a.max_load}); "
              "a cost needs an otherwise idle machine (--allow-load measures anyway, flagged)", file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else (Path(tempfile.mkdtemp(prefix="determinism_cost_")) / "determinism_cost.json"
                                     if a.quick else ROOT / "bench/results/determinism_cost.json")
    print(f"determinism_cost: {len(cells) * repeats} runs, about {est / 60:.0f} min idle; load {load:.2f}; "
          f"order seed {seed}; record -> {out}", flush=True)
    with tempfile.TemporaryDirectory(prefix="determinism_cost_runs_") as work:  # the runs' store, not kept
        store = f"sqlite:///{Path(work) / 'mlflow.db'}"
        record = measure(cells, repeats, seed, a.example, params, a.max_foreign,
                         lambda c: runner(c, a.example, params, store), log=lambda s: print(s, flush=True),
                         warmup=0 if a.quick else 1)
    record["quick"] = a.quick
    record["allow_load"] = a.allow_load and load > a.max_load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    for r in record["rows"]:
        ci = f"[{r['ratio_ci'][0]:.2f}, {r['ratio_ci'][1]:.2f}]" if r["ratio_ci"] else "(no interval)"
        print(f"{r['framework']:10s} {r['factor']:15s} {r['deterministic']:>14s} vs {r['other']:<14s} "
              f"{r['ratio']:.2f}x {ci}  ({r['median_deterministic']:.2f} s vs {r['median_other']:.2f} s)")
    print(f"placebo {'holds 1' if record['placebo_ok'] else 'FAILS' if record['placebo_ok'] is False else 'undecided'}; "
          f"record: {out}")
    if not record["quiet"] or record["allow_load"]:
        print(f"determinism_cost: WARNING: the machine was not idle ({record['load']['runs_busy']} of "
              f"{len(record['runs'])} runs with other processes above {a.max_foreign} cores; load at start {load:.2f}): "
              "the record says so, its ratios are not a cost", file=sys.stderr)
        return 3
    return 1 if record["runs_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
