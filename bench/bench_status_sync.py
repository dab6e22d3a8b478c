"""Benchmark: `repro status` and `repro sync` on a store of 10,000 repro runs of which 1,000 are live.

    PYTHONPATH=. python bench/bench_status_sync.py [--live 1000] [--done 9000] [--repeat 3]

The 1,000 live runs are real: one `repro-sweep --detach` of the framework-free echo project
(tests/sweep/project) as one local batch with parallel=1, each run sleeping 600 s, so one runs and
the rest wait SCHEDULED (the batch's driver is stopped at the end). The other 9,000 are FINISHED repro
runs bulk-inserted into the same sqlite store (MLflow's schema, MLflow creates it). Each command runs
in a fresh interpreter, as a user runs it, wrapped to count the scheduler calls (`Scheduler.poll`,
`fetch`, `exit_state`), the SQL statements sent to the store and the tracking-store calls (each public
method of MLflow's SQL store that the command reaches: against a tracking server, one REST request
each). Each command is timed twice: as it runs on a SQL store (the read fast path of `mlflow_sql`: a
GROUP BY for the table, the live runs' `repro.*` tags only) and with REPRO_PUBLIC_READS=1 (every run
through `MlflowClient.search_runs`, as against a tracking server). The floor is a fresh interpreter
importing mlflow. Target (issue 27): ≤ 2 s each. Results: bench/results/status_sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Run in the child: count scheduler calls, the SQL statements sent to the store and (where the command reaches
# MLflow's SQL store) its public methods (against a tracking server, one REST request each); run the CLI;
# print the counts as the last line. Nothing heavy is imported here before the command itself imports it.
COUNTED = r"""
import json, sys, functools, importlib.abc, importlib.machinery
counts = {"scheduler": {}, "store": {}, "sql_statements": 0}
def wrap(cls, name, kind):
    f = getattr(cls, name)
    @functools.wraps(f)
    def w(*a, **k):
        counts[kind][name] = counts[kind].get(name, 0) + 1
        return f(*a, **k)
    setattr(cls, name, w)
def on_import(module):
    if module.__name__ == "mlflow.store.tracking.sqlalchemy_store":
        cls = module.SqlAlchemyStore
        for n in dir(cls):
            if not n.startswith("_") and callable(getattr(cls, n)) and n not in ("engine", "ManagedSessionMaker"):
                wrap(cls, n, "store")
    elif module.__name__ == "repro_mlflow.schedulers.local":
        for n in ("poll", "fetch", "exit_state", "reconcile", "describe"):
            if hasattr(module.LocalScheduler, n):
                wrap(module.LocalScheduler, n, "scheduler")
    elif module.__name__ == "sqlalchemy.engine":
        from sqlalchemy import event
        def count(*a, **k):
            counts["sql_statements"] += 1
        event.listen(module.Engine, "before_cursor_execute", count)
class Hook(importlib.abc.MetaPathFinder):
    names = ("mlflow.store.tracking.sqlalchemy_store", "repro_mlflow.schedulers.local", "sqlalchemy.engine")
    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module
            def run(module, exec_module=exec_module):
                exec_module(module)
                on_import(module)
            spec.loader.exec_module = run
        return spec
sys.meta_path.insert(0, Hook())
from repro_mlflow.cli import main
rc = main(sys.argv[1:])
print("COUNTS " + json.dumps(counts), file=sys.stderr)
sys.exit(rc)
"""


CPU: list[float] = []  # the last child's user + system CPU seconds (less noisy than wall time on a shared machine)


def run(cmd: list[str], env: dict, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    t = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 2))
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return t, p


def add_finished(db: Path, n: int) -> None:
    """n FINISHED repro runs in the sweep's experiment, bulk-inserted."""
    con = sqlite3.connect(db)
    exp_id = con.execute("SELECT experiment_id FROM experiments WHERE name = 'repro'").fetchone()[0]
    now = 1_700_000_000_000
    runs, tags = [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        runs.append((rid, f"old-{i}", "PROJECT", "", "echo", "bench", "FINISHED", now + i, now + i + 1, "", "active",
                     f"{db.parent}/artifacts/{rid}", exp_id))
        for k, v in {"repro.backend": "local", "repro.target": "local", "repro.sweep": "old",
                     "repro.job_id": f"h:/gone:{i}", "repro.config_hash": f"c{i}", "repro.repeat": "0"}.items():
            tags.append((k, v, rid))
    con.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                    "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
    con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    con.commit()
    con.close()


def timed_counted(args: list[str], env: dict, repeat: int) -> dict:
    times, cpu, counts, last = [], [], None, None
    for _ in range(repeat):
        t, p = run([sys.executable, "-c", COUNTED, *args], env)
        times.append(t)
        cpu.append(CPU[-1])
        line = [x for x in p.stderr.splitlines() if x.startswith("COUNTS ")][-1]
        counts, last = json.loads(line[len("COUNTS "):]), p.stdout.strip().splitlines()[:3]
    return {"seconds": [round(x, 3) for x in times], "median_s": round(statistics.median(times), 3), "cpu_s": cpu,
            "scheduler_calls": counts["scheduler"], "tracking_store_calls": counts["store"],
            "tracking_store_calls_total": sum(counts["store"].values()), "sql_statements": counts["sql_statements"],
            "output_head": last}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--live", type=int, default=1000)
    ap.add_argument("--done", type=int, default=9000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "status_sync.json"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-status-"))
    db = tmp / "mlflow.db"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{db}", REPRO_HOME=str(tmp / "home"), COLUMNS="120",
               PYTHONPATH=str(ROOT))
    load_before = os.getloadavg()
    t_sweep, p = run([str(BIN / "repro-sweep"), "--config-dir", str(ROOT / "tests/sweep/conf_extra"), "example=echo",
                      f"project_dir={ROOT / 'tests/sweep/project'}", f"seed=range(1,{a.live + 1})", "sweep=live",
                      "example.params.sleep=600", "hardware=local", "hardware.backend_config.parallel=1", "--detach"], env)
    drivers = list((tmp / "home").rglob("driver.pid"))
    try:
        add_finished(db, a.done)
        floor = []
        floor_cpu = []
        for _ in range(a.repeat):
            floor.append(run([sys.executable, "-c", "import mlflow"], env)[0])
            floor_cpu.append(CPU[-1])
        help_s = [run([str(BIN / "repro"), "--help"], env)[0] for _ in range(a.repeat)]
        status = timed_counted(["status"], env, a.repeat)
        sync = timed_counted(["sync"], env, a.repeat)
        # the same commands through MlflowClient (the path a tracking server or an unknown schema takes)
        public = dict(env, REPRO_PUBLIC_READS="1")
        status_public = timed_counted(["status"], public, a.repeat)
        sync_public = timed_counted(["sync"], public, a.repeat)
    finally:
        for driver in drivers or list((tmp / "home").rglob("driver.pid")):
            # the batch's driver first (it starts no more runs), then the run it started (its own session)
            for pid_file in [driver, *driver.parent.glob("*.pid")]:
                try:
                    os.killpg(int(pid_file.read_text().split()[0]), signal.SIGTERM)
                except (ProcessLookupError, ValueError, OSError):
                    pass
    f = statistics.median(floor)
    for r in (status, sync, status_public, sync_public):
        r["ratio_to_floor"] = round(r["median_s"] / f, 2)
        r["cpu_ratio_to_floor"] = round(statistics.median(r["cpu_s"]) / statistics.median(floor_cpu), 2)
        r["within_2s"] = r["median_s"] <= 2.0
    res = {
        "benchmark": "bench/bench_status_sync.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
                    "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared machine: compare the ratios to the floor, measured in the same run"},
        "store": {"kind": "sqlite", "runs": a.live + a.done, "live": a.live, "sweep_submit_s": round(t_sweep, 2),
                  "sweep_stderr_tail": p.stderr.strip().splitlines()[-2:]},
        "floor": {"what": "python -c 'import mlflow'", "seconds": [round(x, 3) for x in floor], "median_s": round(f, 3),
                  "cpu_s": floor_cpu},
        "help": {"what": "repro --help (builds every subcommand's parser; imports no mlflow, pandas or rich)",
                 "seconds": [round(x, 3) for x in help_s], "median_s": round(statistics.median(help_s), 3)},
        "status": status, "sync": sync,
        "through_mlflow_client": {"what": "REPRO_PUBLIC_READS=1: every repro run read through MlflowClient.search_runs "
                                          "(a tracking server's path; before issue 27 item 4 the only one)",
                                  "status": status_public, "sync": sync_public},
    }
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    for name, r in (("status", status), ("sync", sync), ("status (MlflowClient)", status_public),
                    ("sync (MlflowClient)", sync_public)):
        print(f"repro {name}: {r['median_s']:.2f} s ({r['ratio_to_floor']:.2f}x floor {f:.2f} s); scheduler calls "
              f"{r['scheduler_calls']}; tracking-store calls {r['tracking_store_calls_total']} (MLflow store methods: "
              f"one REST request each against a server); SQL statements {r['sql_statements']}")
    print(f"repro --help: {statistics.median(help_s):.2f} s")
    print(f"load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
