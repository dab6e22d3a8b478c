"""Benchmark: a sweep larger than the cluster's MaxArraySize on a real Slurm, split into arrays, run to the end.

    PYTHONPATH=. .venv/bin/python bench/bench_slurm_split.py --runs 2500 --max-array-size 1001   # the issue's case
    PYTHONPATH=. .venv/bin/python bench/bench_slurm_split.py --runs 30 --max-array-size 11       # minutes, 3 arrays

Starts its own one-node Slurm cluster (tests/services/slurm.py: root, slurm-wlm, munge) with the given
`MaxArraySize`, runs the real CLI `repro-sweep --detach` over `seed=range(N)` of the test project's
`echo` entry point (a trivial command: each run costs the worker's start-up, about 1-2 s of CPU) on
`hardware=slurm`, then calls the real `repro sync` until every run is terminal and `repro status` once.
Records: the arrays (from the batch record's `parts`), every run's final status, the submit time, the
time to the last run's end, each `repro sync`/`repro status` time, and as the floor `sbatch` of a
one-task array measured in the same run. The whole of it is for a machine with time to spare: 2,500
runs on 2 cores take about an hour; `--submit-only` submits, syncs and shows the status once (every run
followed across the arrays), then cancels them. Results: bench/results/slurm_split.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services.slurm import SlurmCluster  # noqa: E402

PROJECT = ROOT / "tests" / "sweep" / "project"
CONF_EXTRA = ROOT / "tests" / "sweep" / "conf_extra"
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict, timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, p


def bench(runs: int, max_array_size: int, max_running: int | None, timeout: float, submit_only: bool = False,
          sync_every: float = 30.0) -> dict:
    from mlflow.tracking import MlflowClient

    from repro_mlflow.runtime.record import read

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="repro-bench-split-") as tmp, \
            SlurmCluster.start(max_array_size=max_array_size) as cluster:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        env = dict(cluster.env, MLFLOW_TRACKING_URI=uri, REPRO_HOME=str(tmp / "repro"), COLUMNS="200",
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                   PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        client = MlflowClient(uri)
        client.create_experiment("repro")  # the store exists before the clock starts
        floor = []
        for _ in range(3):
            t, p = timed(["sbatch", "--parsable", "--array=0-0", f"--output={tmp}/floor-%A.log", "--wrap", "true"], env)
            floor.append(t)
        cmd = [str(BIN / "repro-sweep"), "--config-dir", str(CONF_EXTRA), "example=echo", f"project_dir={PROJECT}",
               "hardware=slurm", "hardware.backend_config.time=00:10:00", "sweep=split", f"seed=range({runs})",
               *([f"hardware.backend_config.max_running={max_running}"] if max_running else []), "--detach"]
        t0 = time.perf_counter()
        submit_s, p = timed(cmd, env)
        if p.returncode != 0:
            raise SystemExit(f"repro-sweep failed:\n{p.stderr[-3000:]}")
        exp = client.get_experiment_by_name("repro").experiment_id
        first = client.search_runs([exp], max_results=1)[0]
        parts = read(first.data.tags["repro.record"]).parts
        syncs: list[float] = []
        statuses: dict[str, int] = {}
        checked = []
        while True:
            t, p = timed([str(BIN / "repro"), "sync", "--sweep", "split"], env)
            syncs.append(t)
            live = int(re.search(r"checked (\d+) unfinished", p.stdout).group(1)) if "checked" in p.stdout else -1
            checked.append(live)
            if submit_only or live == 0 or time.perf_counter() - t0 > timeout:
                break
            time.sleep(sync_every)
        done_s = time.perf_counter() - t0
        status_s, sp = timed([str(BIN / "repro"), "status", "--sweep", "split"], env)
        if submit_only:  # the arrays are followed (sync checked every run of them); no run is left to the cluster
            cluster.run("scancel", *[p["id"] for p in parts], check=False)
        for r in client.search_runs([exp], max_results=50000):
            statuses[r.info.status] = statuses.get(r.info.status, 0) + 1
    return {
        "benchmark": "bench/bench_slurm_split.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
                    "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared machine: compare with the floor, measured in the same run"},
        "runs": runs, "max_array_size": max_array_size, "max_running": max_running, "sync_every_s": sync_every,
        "arrays": [{"id": p["id"], "first": p["first"], "count": p["count"], "after": p["after"]} for p in parts],
        "submit_only": submit_only, "sync_checked_per_call": checked,
        "statuses": statuses, "all_finished": statuses == {"FINISHED": runs},
        "floor": {"what": "sbatch --array=0-0 --wrap true", "seconds": [round(x, 3) for x in floor],
                  "median_s": round(statistics.median(floor), 3)},
        "submit_s": round(submit_s, 2),
        **({"submit_and_one_sync_s": round(done_s, 1)} if submit_only else
           {"to_last_run_end_s": round(done_s, 1), "per_run_s": round(done_s / runs, 3)}),
        "sync": {"calls": len(syncs), "median_s": round(statistics.median(syncs), 3), "max_s": round(max(syncs), 3)},
        "status": {"seconds": round(status_s, 3), "head": sp.stdout.strip().splitlines()[:1]},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2500)
    ap.add_argument("--max-array-size", type=int, default=1001)
    ap.add_argument("--max-running", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=4 * 3600)
    ap.add_argument("--submit-only", action="store_true",
                    help="submit, sync and status once (every run followed), then cancel the arrays")
    ap.add_argument("--sync-every", type=float, default=30.0,
                    help="seconds between two `repro sync` calls (each takes a core while it runs)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "slurm_split.json"))
    a = ap.parse_args()
    res = bench(a.runs, a.max_array_size, a.max_running, a.timeout, a.submit_only, a.sync_every)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    f = res["floor"]["median_s"]
    ended = (f"sync checked {res['sync_checked_per_call']} unfinished run(s), then the arrays were cancelled"
             if a.submit_only else f"all ended after {res['to_last_run_end_s']} s ({res['per_run_s']} s a run)")
    print(f"{res['runs']} runs at MaxArraySize={res['max_array_size']}: {len(res['arrays'])} arrays "
          f"{[a['count'] for a in res['arrays']]}; {res['statuses']}; submitted in {res['submit_s']} s "
          f"({res['submit_s'] / f:.1f}x one sbatch, {f:.2f} s); {ended}; repro sync {res['sync']['median_s']} s "
          f"x{res['sync']['calls']}; repro status {res['status']['seconds']} s")
    print(f"load {res['machine']['loadavg_1_5_15_before'][0]} -> {res['machine']['loadavg_1_5_15_after'][0]}")
    split_right = len(res["arrays"]) == -(-a.runs // a.max_array_size)
    return 0 if split_right and (res["all_finished"] or a.submit_only) else 1


if __name__ == "__main__":
    sys.exit(main())
