"""Wall-clock overhead of the worker runtime over the same entry point run bare.

The entry point is trivial (start the run given by MLFLOW_RUN_ID, log one metric). Bare and
wrapped runs are interleaved, each against a fresh run in a sqlite store; the overhead is the
difference of the medians. Target: at most 0.5 s.

    .venv/bin/python bench/bench_runtime_overhead.py [--n 9]
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

ENTRY = "import mlflow; mlflow.start_run(); mlflow.log_metric('x', 1.0); mlflow.end_run()"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=9, help="runs of each kind")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "runtime_overhead.json"))
    args = ap.parse_args()

    from mlflow.tracking import MlflowClient

    tmp = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("bench")
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd_bare = [sys.executable, "-c", ENTRY]

    def timed(argv: list[str]) -> float:
        rid = client.create_run(exp).info.run_id
        t0 = time.perf_counter()
        subprocess.run(argv, env=dict(env, MLFLOW_RUN_ID=rid), check=True, capture_output=True)
        dt = time.perf_counter() - t0
        assert client.get_run(rid).data.metrics["x"] == 1.0
        return dt

    timed(cmd_bare)  # warm the page cache
    bare, wrapped = [], []
    for _ in range(args.n):
        bare.append(timed(cmd_bare))
        wrapped.append(timed([sys.executable, "-m", "repro_mlflow.runtime", "--", *cmd_bare]))
    result = {
        "benchmark": "runtime_overhead",
        "n": args.n,
        "bare_median_s": round(statistics.median(bare), 3),
        "wrapped_median_s": round(statistics.median(wrapped), 3),
        "overhead_median_s": round(statistics.median(wrapped) - statistics.median(bare), 3),
        # each wrapped run minus the bare run just before it: robust to slow drifts in load
        "paired_overhead_quartiles_s": [round(q, 3) for q in statistics.quantiles([w - b for b, w in zip(bare, wrapped)], n=4)],
        "bare_s": [round(x, 3) for x in bare],
        "wrapped_s": [round(x, 3) for x in wrapped],
        "target_s": 0.5,
        "machine": f"{platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    result["meets_target"] = result["overhead_median_s"] <= result["target_s"]
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
