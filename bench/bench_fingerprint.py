"""Benchmark: how long the fingerprint capture takes on this machine (target: median <= 0.3 s).

Two numbers, each the median of N runs:
- in_process: `capture()` in a warm process (what the runtime's reporter thread pays after import);
- cold: a fresh `python -c "from repro_mlflow.fingerprint import capture; capture()"` minus a bare
  `python -c pass` (import + capture, what a worker pays from nothing).
Prints a summary and records it in bench/results/fingerprint.json (or --output FILE).

    PYTHONPATH=. python bench/bench_fingerprint.py [--runs 15] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def _median_wall(cmd: list[str], runs: int, env: dict) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=15, help="runs per measurement (at least 10)")
    p.add_argument("--output", default=str(ROOT / "bench/results/fingerprint.json"))
    args = p.parse_args()
    if args.runs < 10:
        p.error("--runs must be at least 10")
    sys.path.insert(0, str(ROOT))
    from repro_mlflow.fingerprint import capture

    capture()  # warm-up
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        record = capture()
        times.append(time.perf_counter() - t)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cold = _median_wall([sys.executable, "-c", "from repro_mlflow.fingerprint import capture; capture()"], args.runs, env)
    bare = _median_wall([sys.executable, "-c", "pass"], args.runs, env)
    result = {
        "benchmark": "fingerprint capture",
        "runs": args.runs,
        "in_process_median_s": round(statistics.median(times), 4),
        "in_process_max_s": round(max(times), 4),
        "cold_median_s": round(cold - bare, 4),
        "python_startup_median_s": round(bare, 4),
        "target_s": TARGET_S,
        "gpu_source": record["gpu"]["source"], "gpu_count": record["gpu"]["count"],
        "ec2_probed": record["site"]["ec2"] is not None,
        "machine": f"{record['cpu']['model']} ({record['cpu']['usable_cores']} usable cores), "
                   f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    result["pass"] = result["in_process_median_s"] <= TARGET_S and result["cold_median_s"] <= TARGET_S
    print(f"fingerprint capture: in-process median {result['in_process_median_s'] * 1000:.1f} ms, "
          f"cold import+capture median {result['cold_median_s'] * 1000:.1f} ms "
          f"(target <= {TARGET_S * 1000:.0f} ms; {args.runs} runs each): {'PASS' if result['pass'] else 'FAIL'}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
