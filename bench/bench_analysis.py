"""Benchmark: `repro analyze` statistics over 100,000 runs in a sqlite store, against the floor and the public API.

    PYTHONPATH=. python bench/bench_analysis.py [--runs 100000] [--api-runs 5000] [--db PATH]

The store is MLflow's own schema (MLflow creates it), bulk-filled with SQL inserts shaped as a sweep
leaves it: 2 examples × 250 configs × 40 environments × 5 repeats (29 tags, 6 params, 6 final metrics a
run; the metric history table is not filled, as neither reader uses it). Environments fall in 4
equivalence classes (GPU models), and 4 of the 40 are not repeatable.

Measured, each on the same store:
  analysis   read_runs (SQL) + every statistic, the loader's level codes passed on as `repro analyze` does
             (no artifacts, no files): the target (issue 27) is ≤ 1.5 s on 100,000 runs and ≤ 15 s on
             1,000,000 within 8 GiB (peak_rss_gib: the process's peak)
  report     figures, HTML, CSV, JSON written (not part of the 5 s)
  api        mlflow.search_runs (it returns a pandas frame) over --api-runs runs, extrapolated to all
  floor      the loader's four SQL scans, read only: stdlib sqlite3 fetchall, and ADBC into Arrow
Results go to bench/results/analysis.json (--out), with the load average and the commit: compare the ratio to
the floor. The result a run replaces is summed up in `earlier_runs`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import place  # noqa: E402

EXAMPLES = ("mnist_convnet", "imdb_bilstm")
N_ENVS = 40
REPEATS = 5
METRICS = ("test_accuracy", "test_loss", "accuracy", "loss", "val_accuracy", "val_loss")
GPUS = ("NVIDIA A100-SXM4-40GB", "Tesla V100-SXM2-32GB", "Quadro RTX 6000", "NVIDIA A10G")


def build_store(path: Path, n_runs: int) -> str:
    """Create the schema through MLflow, then bulk-insert `n_runs` runs with plain SQL."""
    uri = f"sqlite:///{path}"
    from mlflow.tracking import MlflowClient

    exp_id = MlflowClient(uri).create_experiment("bench", artifact_location=str(path.parent / "artifacts"))
    rng = random.Random(0)
    per_example = n_runs // len(EXAMPLES)
    n_cfg = max(1, per_example // (N_ENVS * REPEATS))
    runs, tags, params, metrics = [], [], [], []
    now = 1_700_000_000_000
    i = 0
    con = sqlite3.connect(path)
    # a bulk load: no journal, no fsync, a large cache, and the run-id indexes built once at the end (sorted)
    # instead of row by row in random order (a million runs: 50 min before, the b-trees outgrowing the cache)
    con.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2000000;")
    indexes = con.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                          "AND tbl_name IN ('tags', 'params', 'latest_metrics')").fetchall()
    for (sql,) in indexes:
        con.execute("DROP INDEX " + sql.split()[2])

    def flush() -> None:  # in chunks: a million runs are 29 million tag rows
        con.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
                        "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                        "VALUES (?,?,?,?,?,?)", metrics)
        for x in (runs, tags, params, metrics):
            x.clear()

    for ex in EXAMPLES:
        for c in range(n_cfg):
            seed, threads, opdet = c % 50 + 1, (1, 2, 4, 8, 0)[c // 50 % 5], "true"
            base = 0.9 + rng.random() * 0.08
            for env in range(N_ENVS):
                klass = env % len(GPUS)
                repeatable = env % 10 != 9
                for rep in range(REPEATS):
                    if i >= n_runs:
                        break
                    rid = uuid.UUID(int=rng.getrandbits(128)).hex
                    acc = base + klass * 1e-3 + (0 if repeatable else rng.random() * 1e-3)
                    runs.append((rid, f"run-{i}", "PROJECT", "", "", "bench", "FINISHED", now + i, now + i + 1, "",
                                 "active", f"{path.parent}/artifacts/{rid}/artifacts", exp_id))
                    t = {
                        "mlflow.user": "bench", "mlflow.source.name": "/src", "mlflow.source.type": "PROJECT",
                        "mlflow.project.entryPoint": ex, "mlflow.runName": f"run-{i}",
                        "repro.backend": "htcondor", "repro.target": f"osg_{klass}", "repro.job_id": f"{i}.0",
                        "repro.array_index": str(i), "repro.attempt": "1", "repro.workdir": "/w",
                        "repro.sweep": "bench", "repro.config_hash": f"{ex}-{c}", "repro.repeat": str(rep),
                        "repro.fp.hw": f"hw{env:02d}", "repro.fp.sw": "sw1", "repro.fp.env": f"env{env:02d}",
                        "repro.host": f"host{env:02d}", "repro.site": f"site{env % 7}",
                        "repro.hw.cpu.model": "AMD EPYC 7763", "repro.hw.gpu.name": GPUS[klass],
                        "repro.sw.tensorflow": "2.8.0", "repro.det.seed": str(seed),
                        "repro.det.op_determinism": opdet, "repro.det.threads": str(threads),
                        "repro.primary_metric": "test_accuracy", "repro.digest.data": "d0",
                        "repro.digest.weights": f"w{acc!r}", "repro.digest.predictions": f"p{acc!r}",
                    }
                    tags.extend((k, v, rid) for k, v in t.items())
                    p = {"seed": seed, "epochs": 15, "batch_size": 128, "data": "keras", "op_determinism": opdet,
                         "threads": threads}
                    params.extend((k, str(v), rid) for k, v in p.items())
                    vals = {"test_accuracy": acc, "test_loss": 1 - acc, "accuracy": acc + 0.01, "loss": 0.9 - acc,
                            "val_accuracy": acc - 0.002, "val_loss": 1.01 - acc}
                    metrics.extend((k, v, now + i, 14, 0, rid) for k, v in vals.items())
                    i += 1
                    if len(runs) >= 20_000:
                        flush()
    flush()
    con.commit()
    for (sql,) in indexes:
        con.execute(sql)
    con.commit()
    con.close()
    return uri


def bench_analysis(uri: str) -> dict:
    from repro_mlflow.analysis import load, pipeline

    t0 = time.perf_counter()
    loaded = load.read_runs(uri, load.Selection(sweep="bench"))  # as `repro analyze` reads and analyses
    df = loaded.frame
    t1 = time.perf_counter()
    result, keyed = pipeline.analyse(df, pipeline.Options(artifacts=False), uri, loaded.codes)
    t2 = time.perf_counter()
    ex = result["examples"][0]
    return {"runs": len(df), "columns": df.shape[1], "load_s": round(t1 - t0, 3), "statistics_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3),
            "check": {"configs": ex["n_configs"], "environments": ex["n_environments"],
                      "groups_not_repeatable": ex["summary"]["not_repeatable"],
                      "classes_of_first_config": len(ex["equivalence"][0]["classes"])}}, result, keyed


def bench_report(result: dict, keyed, out: Path) -> dict:
    from repro_mlflow.analysis import report

    t0 = time.perf_counter()
    figs = report.make_figures(result, keyed)
    report.write_outputs(out, result, keyed, figs, "bench")
    return {"report_s": round(time.perf_counter() - t0, 3)}


def bench_api(uri: str, n_runs: int, api_runs: int) -> dict:
    import mlflow

    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name("bench").experiment_id
    t0 = time.perf_counter()
    df = mlflow.search_runs([exp], filter_string="tags.`repro.sweep` = 'bench'", max_results=api_runs)
    # the pandas step a user would add: group and describe the primary metric per environment
    df.groupby(["tags.mlflow.project.entryPoint", "tags.repro.fp.env"])["metrics.test_accuracy"].describe()
    t = time.perf_counter() - t0
    return {"runs_read": len(df), "seconds": round(t, 3), "runs_per_s": round(len(df) / t),
            "extrapolated_s_for_all": round(t * n_runs / max(len(df), 1), 1)}


FLOOR_SQL = (
    "SELECT r.run_uuid, r.experiment_id, r.status, r.start_time, r.artifact_uri, r.name FROM runs r WHERE "
    "r.lifecycle_stage = 'active' AND r.run_uuid IN "
    "(SELECT s.run_uuid FROM tags s WHERE s.key = 'repro.sweep' AND s.value = 'bench')",
    "SELECT run_uuid, key, value FROM tags WHERE (key LIKE 'repro.%' AND key NOT IN ('repro.job_id', "
    "'repro.array_index', 'repro.workdir', 'repro.attempt', 'repro.replayed', 'repro.status_reason', "
    "'repro.offline')) OR key IN ('mlflow.project.entryPoint', 'mlflow.runName')",
    "SELECT run_uuid, key, value FROM params",
    "SELECT run_uuid, key, value, is_nan FROM latest_metrics",
)


def bench_floor(uri: str, arrow_only: bool = False) -> dict:
    """The loader's own queries (its sequential-scan form), read only: no pivot, no pandas, no statistics.

    Twice: with the stdlib driver (`fetchall`, one Python object per cell) and through ADBC into Arrow
    (what the loader uses; no Python object per cell).
    """
    import adbc_driver_sqlite.dbapi as adbc

    path = uri[len("sqlite:///"):]
    t_py = None
    if not arrow_only:  # (a Python object per cell: some 10 GB for a million runs)
        con = sqlite3.connect(path)
        t0 = time.perf_counter()
        sum(len(con.execute(sql).fetchall()) for sql in FLOOR_SQL)
        t_py = round(time.perf_counter() - t0, 3)
        con.close()
    n = 0
    with adbc.connect(path) as con, con.cursor() as cur:
        t0 = time.perf_counter()
        for sql in FLOOR_SQL:
            cur.execute(sql)
            n += cur.fetch_arrow_table().num_rows
        t_arrow = time.perf_counter() - t0
    return {"rows": n, "seconds": t_py, "seconds_arrow": round(t_arrow, 3)}


def _commit() -> str | None:
    """The checkout's commit, `+dirty` when files differ from it: which code a result was measured on."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def summary(old: dict) -> dict:
    """An earlier result, in the few numbers that compare."""
    a, floor = old.get("analysis") or {}, old.get("raw_sql_floor") or {}
    out = {"when": old.get("when"), "code": old.get("code"),
           "loadavg_1_5_15_before": (old.get("machine") or {}).get("loadavg_1_5_15_before"),
           "total_s": a.get("total_s"), "load_s": a.get("load_s"), "statistics_s": a.get("statistics_s"),
           "arrow_floor_s": floor.get("seconds_arrow"), "analysis_over_arrow_floor": old.get("analysis_over_arrow_floor"),
           "report_s": (old.get("report") or {}).get("report_s"), "note": old.get("note")}
    return {k: v for k, v in out.items() if v is not None}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--api-runs", type=int, default=5_000)
    ap.add_argument("--db", help="reuse (or create) this sqlite file")
    ap.add_argument("--no-report", action="store_true", help="skip the report (figures, HTML, CSV, JSON)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "analysis.json"))
    a = ap.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    tmp = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    db = Path(a.db) if a.db else tmp / "mlflow.db"
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    reused = db.exists()
    uri = f"sqlite:///{db}" if reused else build_store(db, a.runs)
    build_s = None if reused else round(time.perf_counter() - t0, 1)
    analysis, result, keyed = bench_analysis(uri)
    # warm cache: the better of two (once beyond 200,000 runs: the page cache cannot hold such a store twice anyway)
    analysis_again = bench_analysis(uri)[0] if analysis["runs"] <= 200_000 else analysis
    # the peak memory of the process so far: the store built (when not reused), then the analysis twice
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    best = min(analysis, analysis_again, key=lambda r: r["total_s"])
    floor = bench_floor(uri, arrow_only=best["runs"] > 200_000)
    rep = bench_report(result, keyed, tmp / "report") if not a.no_report else None
    api = bench_api(uri, best["runs"], a.api_runs) if a.api_runs else None
    res = {
        "benchmark": "bench/bench_analysis.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
                    "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "when the load is high, compare the readers with each other"},
        "store": {"kind": "sqlite", "runs": best["runs"], "fixture_build_s": build_s, "fixture_reused": reused,
                  "rows_per_run": {"tags": 29, "params": 6, "latest_metrics": 6}},
        "analysis": best, "analysis_runs_s": [analysis["total_s"], analysis_again["total_s"]],
        "peak_rss_gib": round(peak_gib, 2), "within_8_gib": peak_gib <= 8,
        "target_s": 1.5 if best["runs"] <= 100_000 else 15.0,
        "report": rep, "search_runs_pandas": api, "raw_sql_floor": floor,
        "analysis_over_floor": round(best["total_s"] / floor["seconds"], 2) if floor["seconds"] else None,
        "analysis_over_arrow_floor": round(best["total_s"] / floor["seconds_arrow"], 2),
    }
    if api:
        res["speedup_vs_search_runs"] = round(api["extrapolated_s_for_all"] / best["total_s"], 1)
        # the issue measured search_runs at 5,000 runs in 4.4 s on an idle machine: scale our time by that
        res["analysis_s_scaled_to_idle_machine"] = round(best["total_s"] * 4.4 / api["seconds"] * api["runs_read"]
                                                         / 5000, 2)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    whole = json.loads(out.read_text()) if out.is_file() else {}
    if "before" in whole:  # hand-kept history of the million-run file
        res["before"] = whole["before"]
    out.write_text(json.dumps(place(whole, None, res, summary), indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
