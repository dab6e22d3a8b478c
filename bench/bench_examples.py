"""Benchmark: wall time of each example entry point at the test sizes (target: under 60 s each).

Runs each entry point once, one at a time, through `mlflow run . -e E --backend repro-local` into a
fresh sqlite store, and reads back the run's wall time (MLflow start to end: the runtime, the
framework import, training and logging), its primary metric and whether it finished. Prints a
table and records it in bench/results/examples.json (or --output FILE). The load of the machine
at the start is recorded too: on a shared machine the numbers move with it.

    PYTHONPATH=. python bench/bench_examples.py [--backend tensorflow] [--output FILE]
    PYTHONPATH=. python bench/bench_examples.py --entry_points nnunet_segmentation nnunet_segmentation@cpu

`nnunet_segmentation` is the tests' quick size, `nnunet_segmentation@cpu` the size of
conf/example/nnunet_segmentation.yaml (no 60 s target: minutes). Rows of the entry points measured
replace theirs in the results file; the others are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_S = 60
NNUNET = {  # not in the tests' SMALL: the suite runs nnU-Net in tests/examples/test_nnunet.py only
    "nnunet_segmentation": {"data": "synthetic", "cases": 5, "size": 16, "epochs": 1, "iterations_per_epoch": 2,
                            "val_iterations_per_epoch": 1, "threads": 1},
    "nnunet_segmentation@cpu": {"data": "synthetic", "cases": 20, "size": 32, "epochs": 4,
                                "iterations_per_epoch": 60},
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keras_backend", default="tensorflow", choices=["tensorflow", "jax", "torch"])
    p.add_argument("--entry_points", nargs="*", default=None)
    p.add_argument("--output", default=str(ROOT / "bench/results/examples.json"))
    args = p.parse_args()
    from tests.examples.examples_runs import SMALL, submit, wait

    tmp = Path(tempfile.mkdtemp(prefix="bench_examples_"))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    os.environ.update(MLFLOW_TRACKING_URI=uri, REPRO_HOME=str(tmp / "repro"), TF_CPP_MIN_LOG_LEVEL="3")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    rows = []
    sizes = {**SMALL, **NNUNET}
    for ep in args.entry_points or list(SMALL):
        load = os.getloadavg()[0]
        t0 = time.monotonic()
        extra = {} if ep.startswith("nnunet") else {"keras_backend": args.keras_backend}
        rid = submit(env, ep.split("@")[0], **sizes[ep], **extra)
        run = wait([rid], timeout_s=3600)[rid]
        metric = run.data.tags.get("repro.primary_metric")
        rows.append({"entry_point": ep, "params": sizes[ep], "status": run.info.status,
                     "run_wall_s": round((run.info.end_time - run.info.start_time) / 1000, 1),
                     "observed_s": round(time.monotonic() - t0, 1), "primary_metric": metric,
                     "value": run.data.metrics.get(metric), "loadavg_1m_at_start": round(load, 2),
                     "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        r = rows[-1]
        print(f"{ep:28s} {r['status']:9s} {r['run_wall_s']:6.1f} s  {metric}={r['value']}  (load {r['loadavg_1m_at_start']})", flush=True)
    out = Path(args.output)
    kept = json.loads(out.read_text())["runs"] if out.is_file() else []
    measured = {r["entry_point"] for r in rows}
    rows = [r for r in kept if r["entry_point"] not in measured] + rows
    result = {"benchmark": "examples", "target_s": TARGET_S, "keras_backend": args.keras_backend,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if all(r["status"] == "FINISHED" and (r["entry_point"].startswith("nnunet") or r["run_wall_s"] < TARGET_S)
                    for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
