"""Benchmark: 1,000 runs submitted to a real Slurm as ONE job array, versus a loop of `mlflow run`.

    PYTHONPATH=. .venv/bin/python bench/bench_slurm_submit.py [--runs 1000] [--loop 5]

Starts its own one-node Slurm cluster (tests/services/slurm.py; needs root, slurm-wlm, munge),
creates the runs in a fresh sqlite store through the batch API (`submit_batch`: runs created,
project packed once, one `sbatch --array`), and stops the clock when sbatch has accepted the
array; the array is cancelled right after. Then it times `mlflow run ... --backend repro-slurm`
(the real CLI, one run per call) `--loop` times and extrapolates to `--runs`.
Writes bench/results/slurm_submit.json. Target: the 1,000-run submission in at most 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services.slurm import SlurmCluster  # noqa: E402

MLPROJECT = """\
name: bench
entry_points:
  main:
    parameters:
      seed: {type: int, default: 0}
    command: "python -c \\"print({seed})\\""
"""
BUDGET_S = 10.0


def bench(runs: int, loop: int) -> dict:
    from mlflow.tracking import MlflowClient

    from repro_mlflow.submit.batch import submit_batch
    from repro_mlflow.submit.project import make_spec
    from repro_mlflow.schedulers.slurm import SlurmConfig, SlurmScheduler

    with tempfile.TemporaryDirectory(prefix="repro-bench-") as tmp, SlurmCluster.start() as cluster:
        tmp = Path(tmp)
        proj = tmp / "proj"
        proj.mkdir()
        (proj / "MLproject").write_text(MLPROJECT)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ.update(SLURM_CONF=str(cluster.conf), MLFLOW_TRACKING_URI=uri, REPRO_HOME=str(tmp / "repro"))
        client = MlflowClient(uri)
        exp = client.create_experiment("bench")  # store created before the clock starts

        t0 = time.perf_counter()
        specs = [make_spec(proj, "main", {"seed": i}) for i in range(runs)]
        t1 = time.perf_counter()
        rids = submit_batch(client, SlurmScheduler(SlurmConfig(time="5")), specs, proj, exp, uri)
        t2 = time.perf_counter()
        array = client.get_run(rids[0]).data.tags["repro.job_id"].split("_")[0]
        cluster.run("scancel", array, check=False)
        tasks = cluster.run("squeue", "--array", "--states=all", "-h", "-o", "%i", f"--jobs={array}", check=False).stdout.split()
        job_ids = {r.data.tags.get("repro.job_id") for r in client.search_runs([exp], max_results=runs)}
        assert len(rids) == runs and len(job_ids) == runs, "every run got its own array task"
        batch = {"runs": runs, "specs_s": round(t1 - t0, 3), "submit_batch_s": round(t2 - t1, 3),
                 "total_s": round(t2 - t0, 3), "per_run_ms": round((t2 - t0) * 1000 / runs, 3),
                 "array_job_id": array, "array_tasks_seen_by_squeue": len(tasks), "sbatch_calls": 1,
                 "budget_s": BUDGET_S, "within_budget": (t2 - t0) <= BUDGET_S}

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        times = []
        for i in range(loop):
            s = time.perf_counter()
            p = subprocess.run([str(Path(sys.executable).parent / "mlflow"), "run", str(proj), "-e", "main", "-P", f"seed={i}",
                                "--experiment-name", "bench-loop", "--backend", "repro-slurm",
                                "--backend-config", json.dumps({"time": "5"})],
                               env=env, capture_output=True, text=True, timeout=300)
            times.append(round(time.perf_counter() - s, 3))
            if p.returncode != 0:
                raise SystemExit(f"mlflow run failed: {p.stderr[-2000:]}")
        cluster.run("scancel", "--full", "-u", os.environ.get("USER", "root"), check=False)
        mean = sum(times) / len(times)
        loop_res = {"runs": loop, "times_s": times, "mean_s": round(mean, 3),
                    f"extrapolated_{runs}_s": round(mean * runs, 1)}
        return {
            "benchmark": "slurm_submit",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                     "load_avg_1m": round(os.getloadavg()[0], 2),
                     "slurm": subprocess.run(["sinfo", "--version"], env=env, capture_output=True, text=True).stdout.strip()},
            "batch_api_one_array": batch,
            "mlflow_run_loop": loop_res,
            "speedup": round(mean * runs / (t2 - t0), 1),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--loop", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "slurm_submit.json"))
    a = ap.parse_args()
    res = bench(a.runs, a.loop)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    b, lp = res["batch_api_one_array"], res["mlflow_run_loop"]
    print(f"{b['runs']} runs, one array: {b['total_s']} s ({b['per_run_ms']} ms/run; budget {BUDGET_S} s: "
          f"{'ok' if b['within_budget'] else 'OVER'})")
    print(f"mlflow run loop: {lp['mean_s']} s/run -> {lp[f'extrapolated_{a.runs}_s']} s for {a.runs} (x{res['speedup']})")
    return 0 if b["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
