"""Benchmark: a 1,000-run (or 10,000-run) sweep submitted to a real Slurm with `repro-sweep` (plan, runs
created, arrays submitted), the whole command against the floor of its imports.

    PYTHONPATH=. .venv/bin/python bench/bench_sweep.py [--seeds 10 --repeats 10 --threads 10]
    PYTHONPATH=. .venv/bin/python bench/bench_sweep.py --seeds 100      # 10,000 runs: at_10000_runs

Starts its own one-node Slurm cluster (tests/services/slurm.py; needs root, slurm-wlm, munge) and a
fresh sqlite store (created before the clock starts, as a user's store exists), then runs the real
CLI `repro-sweep --detach` over seed x repeat x threads of the test project's `echo` entry point on
`hardware=slurm`. It records the launcher's own clock (plan: every job composed and checked; total:
plan + runs created + one `sbatch --array`, as printed by repro-sweep) and the wall time of the whole
command (Python, Hydra and MLflow start-up included), checks that the runs exist with one array
job id each, and cancels the arrays. Beside it, in the same run, the floor: `python -c "import mlflow,
hydra"` (the imports the command cannot do without: runs are made through MLflow's client, the sweep
by Hydra), and the store floor: the same plus opening the sqlite store (MLflow's SQL store module,
SQLAlchemy, alembic's schema check), each three times, median. Writes bench/results/sweep.json (a size other than 1,000 goes under
`at_<N>_runs`; the result a new one replaces is kept in its `earlier_runs`). Targets (issue 27): the whole command 1,000 runs in at most 2.5 s, 10,000 in 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import place  # noqa: E402
from tests.services.slurm import SlurmCluster  # noqa: E402

BUDGET_S = {1000: 2.5, 10000: 10.0}
FLOOR = "import mlflow, hydra"
# the same, plus opening the sqlite store the runs go to (MLflow's SQL store module, SQLAlchemy, alembic's
# schema check): what any command that creates runs through MLflow's public client pays before its first run
STORE_FLOOR = "import mlflow, hydra; mlflow.MlflowClient().search_experiments(max_results=1)"
PROJECT = ROOT / "tests" / "sweep" / "project"
CONF_EXTRA = ROOT / "tests" / "sweep" / "conf_extra"


def bench(seeds: int, repeats: int, threads: int) -> dict:
    from mlflow.tracking import MlflowClient

    runs = seeds * repeats * threads
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="repro-bench-sweep-") as tmp, SlurmCluster.start() as cluster:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        env = dict(cluster.env, MLFLOW_TRACKING_URI=uri, REPRO_HOME=str(tmp / "repro"),
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        client = MlflowClient(uri)
        exp = client.create_experiment("repro")  # the store exists before the clock starts
        cmd = [str(Path(sys.executable).parent / "repro-sweep"), "--config-dir", str(CONF_EXTRA), "example=echo",
               f"project_dir={PROJECT}", "hardware=slurm", "hardware.backend_config.time=00:05:00", "sweep=bench",
               f"seed=range({seeds})", f"repeat=range({repeats})", f"threads=range({threads})", "--detach"]
        floor, store_floor = [], []
        for _ in range(3):
            for code, times in ((FLOOR, floor), (STORE_FLOOR, store_floor)):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
                times.append(time.perf_counter() - t0)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        if p.returncode != 0:
            raise SystemExit(f"repro-sweep failed:\n{p.stderr[-3000:]}")
        m = re.search(r"(\d+) run\(s\) planned in ([\d.]+)s; (\d+) submitted in (\d+) batch\(es\).*\(([\d.]+)s\)", p.stderr)
        if not m:
            raise SystemExit(f"unexpected repro-sweep output:\n{p.stderr}")
        planned, plan_s, submitted, batches, total_s = int(m[1]), float(m[2]), int(m[3]), int(m[4]), float(m[5])
        found = []
        token = None
        while True:
            page = client.search_runs([exp], "tags.`repro.sweep` = 'bench'", max_results=5000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        job_ids = {r.data.tags.get("repro.job_id") for r in found}
        arrays = {j.split("_")[0] for j in job_ids}
        for a in arrays:
            cluster.run("scancel", a, check=False)
        assert planned == submitted == runs == len(found) == len(job_ids), (planned, submitted, runs, len(found))
        budget = BUDGET_S.get(runs)
        fl = statistics.median(floor)
        return {
            "benchmark": "sweep_submit",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                     "load_avg_1m": round(os.getloadavg()[0], 2), "load_avg_1m_before": load_before,
                     "slurm": subprocess.run(["sinfo", "--version"], env=env, capture_output=True, text=True).stdout.strip()},
            "command": " ".join(cmd[1:]),
            "runs": runs,
            "plan_s": plan_s,
            "plan_create_submit_s": total_s,
            "cli_wall_s": round(wall, 3),
            "cli_cpu_s": round(cpu, 2),
            "floor": {"what": FLOOR, "seconds": [round(x, 3) for x in floor], "median_s": round(fl, 3)},
            "cli_over_floor": round(wall / fl, 2),
            "store_floor": {"what": STORE_FLOOR, "seconds": [round(x, 3) for x in store_floor],
                            "median_s": round(statistics.median(store_floor), 3)},
            "cli_over_store_floor": round(wall / statistics.median(store_floor), 2),
            "batches": batches,
            "slurm_arrays": len(arrays),
            "target_whole_command_s": budget,
            "within_target": None if budget is None else wall <= budget,
            "note": "plan_create_submit_s is repro-sweep's own clock from its launcher receiving the jobs to sbatch "
                    "accepting the last array; cli_wall_s adds interpreter, Hydra and MLflow start-up and Hydra's "
                    "sweep expansion; the floor is measured in the same run. 2 shared CPU cores.",
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sweep.json"))
    a = ap.parse_args()
    res = bench(a.seeds, a.repeats, a.threads)
    out = Path(a.out)
    key = None if res["runs"] == 1000 else f"at_{res['runs']}_runs"
    out.write_text(json.dumps(place(json.loads(out.read_text()) if out.is_file() else {}, key, res), indent=2) + "\n")
    print(f"{res['runs']} runs, {res['slurm_arrays']} array(s): plan {res['plan_s']} s, plan+create+submit "
          f"{res['plan_create_submit_s']} s; whole command {res['cli_wall_s']} s = {res['cli_over_floor']}x the floor "
          f"({res['floor']['median_s']} s: {FLOOR}), {res['cli_over_store_floor']}x the store floor "
          f"({res['store_floor']['median_s']} s: the same + the sqlite store opened); target {res['target_whole_command_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
