"""Benchmark: the whole `repro analyze` command (a fresh interpreter: imports, statistics, terminal answer,
HTML report with its SVG figures, the analysis run logged to MLflow) against the import floor.

    PYTHONPATH=. python bench/bench_analyze_command.py [--runs 400] [--repeat 3] [--db STORE --runs N]

The floor is a fresh interpreter importing mlflow, pandas, matplotlib and scipy and nothing else: what
any command reading MLflow runs and drawing a figure pays before it starts. The store is
bench/bench_analysis.py's (MLflow's schema, bulk-filled: 2 examples × configs × 40 environments × 5
repeats). Medians of --repeat, floor and command alternated. The target (issue 27): the whole command
at most 2× the floor on 400 runs. Results go to bench/results/analyze_command.json with the ratio to
the floor beside each time, since these machines are shared. On 100,000 runs (--db, a store built by
bench_analysis.py) the target is at most 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_analysis import build_store  # noqa: E402
from bench.results_file import place  # noqa: E402

BIN = Path(sys.executable).parent
FLOOR = "import mlflow, pandas, matplotlib, scipy"


READ_LINES: list[str] = []  # the command's own "read N run(s) … in X s; statistics in Y s"
CPU: dict[str, list[float]] = {}  # per command: the child's user + system CPU seconds (less noisy than wall time)


def timed(cmd: list[str], env: dict, name: str = "") -> float:
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    t = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append(round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 2))
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    READ_LINES.extend(x for x in p.stderr.splitlines() if x.startswith("read "))
    return t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", help="reuse this store (bench_analysis.py's, e.g. 100,000 runs) instead of building one")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "analyze_command.json"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    env = dict(os.environ, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", COLUMNS="120")
    load_before = os.getloadavg()
    uri = f"sqlite:///{Path(a.db).resolve()}" if a.db else build_store(tmp / "mlflow.db", a.runs)
    env["MLFLOW_TRACKING_URI"] = uri
    floor, whole, no_fig = [], [], []
    for i in range(a.repeat):
        floor.append(timed([sys.executable, "-c", FLOOR], env, "floor"))
        whole.append(timed([str(BIN / "repro"), "analyze", "--sweep", "bench", "--out", str(tmp / f"r{i}")], env,
                           "whole"))
        no_fig.append(timed([str(BIN / "repro"), "analyze", "--sweep", "bench", "--no-figures", "--no-log",
                             "--out", str(tmp / f"n{i}")], env, "no_figures"))
    svgs = sorted(p.name for p in (tmp / "r0" / "figures").glob("*.svg"))
    f, w, n = (statistics.median(x) for x in (floor, whole, no_fig))
    res = {
        "benchmark": "bench/bench_analyze_command.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
                    "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared machine: compare the ratios to the floor, measured alternately in the same run"},
        "runs": a.runs, "store_reused": bool(a.db),
        "floor": {"what": FLOOR, "seconds": [round(x, 3) for x in floor], "median_s": round(f, 3),
                  "cpu_s": CPU["floor"]},
        "whole_command": {"what": "repro analyze --sweep bench (report, figures, analysis run logged)",
                          "seconds": [round(x, 3) for x in whole], "median_s": round(w, 3),
                          "ratio_to_floor": round(w / f, 2), "target_ratio": 2.0, "within_target": w / f <= 2.0,
                          "target_s_at_100000_runs": 10.0, "figures": svgs, "read_lines": READ_LINES[::2],
                          "cpu_s": CPU["whole"],
                          "cpu_ratio_to_floor": round(statistics.median(CPU["whole"]) / statistics.median(CPU["floor"]), 2)},
        "no_figures": {"what": "repro analyze --sweep bench --no-figures --no-log",
                       "seconds": [round(x, 3) for x in no_fig], "median_s": round(n, 3),
                       "ratio_to_floor": round(n / f, 2), "cpu_s": CPU["no_figures"]},
    }
    out = Path(a.out)
    key = f"at_{a.runs}_runs" if a.db else None  # a large store's run goes beside the 400-run result
    out.write_text(json.dumps(place(json.loads(out.read_text()) if out.is_file() else {}, key, res), indent=1) + "\n")
    print(f"floor {f:.2f} s; whole command {w:.2f} s ({w / f:.2f}x floor); --no-figures {n:.2f} s "
          f"({n / f:.2f}x); {len(svgs)} figures; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
