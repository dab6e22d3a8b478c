"""A campaign's load on one tracking server: many runs' mirrors delivering into one `mlflow server` at once.

One real `mlflow server` (1 worker; SQLite backend, or PostgreSQL with --store postgresql, started as
tests/services does). `--mirrors` runs, each with its own local store (runtime/offline.start) and the
product's mirror (runtime/mirror.Mirror: its live loop, pacing and final delivery, replay.Replayer,
its own MlflowClient on the server), fed by a writer that logs `--keys` metrics at one step a second
(`log_batch` into the local store, as `mlflow.log_metrics` does) for `--seconds` s.

Design (memory): a process that imports mlflow takes ~165 MB, so 200 processes need ~33 GB; the
mirrors are spread over `--procs` processes, each running mirrors/procs mirrors and their writers
as threads (a run's mirror is a thread of its worker anyway). The mirror's fingerprint step (once per
run, at its start) is left out. On a real campaign each mirror has its host to itself; here every
mirror, writer and the server share this machine's cores, so the client side is CPU-bound first.

Measured:
- requests per second at the server: every HTTP request the mirrors made (counted in
  `mlflow.utils.rest_utils.http_request` in each process), over the logging window;
- delivery lag: for every point, the time from its local timestamp to the answer of the request
  that delivered it (the server committed it then: visible from that moment), p50/p99/max;
- nothing lost or doubled: after every run ended, the server's database is counted
  (`metrics` rows per run and key, and distinct steps) against what the writers logged;
- the server's latency for a UI-like `search_runs` (the experiment's 100 latest runs with their
  data) every second meanwhile, p50/p99, and the same before the mirrors start (idle).

    .venv/bin/python bench/bench_mirror_load.py --store sqlite --mirrors 200 --procs 10 --seconds 120
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))], 3)


def worker(args) -> int:
    """One process: its share of the runs, each a writer thread and the product's Mirror."""
    from repro_mlflow.runtime.mirror import client_settings

    client_settings()  # as the runtime: one try per request, the mirror is the retry loop
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow.utils.rest_utils as ru
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from repro_mlflow.runtime import offline
    from repro_mlflow.runtime.mirror import Mirror

    requests: list[tuple[float, float, str, bool]] = []  # (start, seconds, endpoint, ok)
    causes: dict[str, int] = {}  # why requests failed
    lags: list[float] = []
    lock = threading.Lock()
    real_http = ru.http_request

    def counted(*a, **kw):
        t0 = time.time()
        ok = False
        try:
            r = real_http(*a, **kw)
            ok = r.status_code < 400
            if not ok:
                with lock:
                    causes[f"HTTP {r.status_code}"] = causes.get(f"HTTP {r.status_code}", 0) + 1
            return r
        except Exception as e:
            import re

            m = re.search(r"too many \d+ error responses|Read timed out|Connection refused|RemoteDisconnected|"
                          r"Connection reset|Connection aborted", str(e))
            with lock:
                key = m.group(0) if m else type(e).__name__
                causes[key] = causes.get(key, 0) + 1
            raise
        finally:
            with lock:
                requests.append((t0, time.time() - t0, str(kw.get("endpoint", "")).rsplit("/", 1)[-1], ok))

    ru.http_request = counted

    class BenchMirror(Mirror):
        def _fingerprint(self) -> None:  # once per run at its start; not part of the steady load
            pass

    runs = json.loads(Path(args.runs_file).read_text())
    tmp = Path(args.tmp)
    mirrors, locals_ = [], []
    for rid in runs:
        uri, lid = offline.start(tmp / rid, rid, args.uri)
        m = BenchMirror(rid, args.uri, tmp / rid, uri, lid, {}, dict(os.environ))
        mirrors.append(m)
        locals_.append((rid, MlflowClient(uri), lid))

    # the delivering request's answer time, per point: MlflowClient.log_batch on a real run (the mirrors')
    real_ids = set(runs)
    real_log_batch = MlflowClient.log_batch

    def log_batch(self, run_id, metrics=(), params=(), tags=(), **kw):
        out = real_log_batch(self, run_id, metrics=metrics, params=params, tags=tags, **kw)
        if run_id in real_ids and metrics:
            now = time.time()
            with lock:
                lags.extend(now - x.timestamp / 1000 for x in metrics)
        return out

    MlflowClient.log_batch = log_batch
    logged: dict[str, int] = {}

    def write(rid: str, client, lid: str) -> None:
        step, n = 0, 0
        next_t = args.start_at
        while time.time() < args.start_at + args.seconds:
            now_ms = int(time.time() * 1000)
            client.log_batch(lid, metrics=[Metric(f"m{k}", float(step * k), now_ms, step) for k in range(args.keys)])
            n += args.keys
            step += 1
            next_t += 1.0
            time.sleep(max(0.0, next_t - time.time()))
        logged[rid] = n

    time.sleep(max(0.0, args.start_at - time.time()))
    writers = [threading.Thread(target=write, args=t, daemon=True) for t in locals_]
    for t in writers:
        t.start()
    for m in mirrors:
        m.start()
    for t in writers:
        t.join()
    t_end = time.time()
    end_ms = int(time.time() * 1000)
    for m in mirrors:  # as the runtime: the command's end in bundle.json, then the mirror's final delivery
        offline.finish(m.bundle, "FINISHED", None, end_ms)
    ends = [threading.Thread(target=m.finish, args=("FINISHED", None, end_ms), daemon=True) for m in mirrors]
    for t in ends:
        t.start()
    for t in ends:
        t.join()
    import resource

    Path(args.out).write_text(json.dumps({
        "logged": logged, "delivered": {m.real_run_id: m.delivered for m in mirrors}, "requests": requests,
        "lags": lags, "causes": causes, "writers_end": t_end, "finished": time.time(),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)}))
    return 0


def count_on_server(backend_uri: str, run_ids: list[str]) -> dict[str, tuple[int, int]]:
    """{run id: (metric rows, distinct (key, step))} in the server's database."""
    import sqlalchemy as sa

    eng = sa.create_engine(backend_uri)
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT run_uuid, COUNT(*), COUNT(DISTINCT key || ':' || CAST(step AS VARCHAR(20))) "
                                 "FROM metrics GROUP BY run_uuid")).fetchall()
    eng.dispose()
    found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    return {rid: found.get(rid, (0, 0)) for rid in run_ids}


def sync_phase(uri: str, stores: Path, run_ids: list[str]) -> dict:
    """What `repro sync` does for the runs whose mirror gave up (grace ran out): replay each bundle."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.tracking import MlflowClient

    from repro_mlflow.runtime import offline
    from repro_mlflow.submit.offline import replay_bundle

    client = MlflowClient(uri)
    left = [r for r in run_ids if client.get_run(r).info.status != "FINISHED"]
    t0 = time.time()
    for rid in left:  # a bundle whose runtime never wrote its end (the bench's first version) gets it now
        if offline.read_bundle(stores / rid).get("status") is None:
            offline.finish(stores / rid, "FINISHED", None, int(t0 * 1000))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: replay_bundle(client, r, stores / r), left))
    return {"runs_left_to_sync": len(left), "sync_s": round(time.time() - t0, 1), "sync_threads": 4}


def statuses_of(uri: str, exp: str, n: int) -> dict[str, int]:
    from mlflow.tracking import MlflowClient

    out: dict[str, int] = {}
    for r in MlflowClient(uri).search_runs([exp], max_results=n + 10):
        out[r.info.status] = out.get(r.info.status, 0) + 1
    return out


def session_cpu_s(sid: int) -> float:
    """CPU seconds (user + system) of the processes of session `sid` (the server and its workers)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(f[3]) == sid:
                total += int(f[11]) + int(f[12])
    return total / tick


def ui_probe(uri: str, exp_id: str, stop: threading.Event, out: list[float]) -> None:
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            c.search_runs([exp_id], max_results=100, order_by=["attributes.start_time DESC"])
            out.append(time.perf_counter() - t0)
        except Exception:  # noqa: BLE001 - a failed probe is counted as missing
            pass
        stop.wait(1.0)


def bench(args) -> dict:
    from mlflow.tracking import MlflowClient

    from repro_mlflow.runtime import localstore
    from tests.services.mlflow_server import MlflowServer
    from tests.services.postgres import postgres
    from contextlib import nullcontext

    tmp = Path(tempfile.mkdtemp(prefix="bench-mirror-load-"))
    os.environ["REPRO_HOME"] = str(tmp / "home")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    localstore.template()  # the migrated empty store each run's local store copies (made once)
    ctx = postgres() if args.store == "postgresql" else nullcontext(f"sqlite:///{tmp / 'server' / 'server.db'}")
    with ctx as backend:
        server = MlflowServer(tmp / "server", backend_uri=backend)
        server.restart(timeout=240)
        procs: list[subprocess.Popen] = []
        try:
            client = MlflowClient(server.uri)
            exp = client.create_experiment(f"load-{time.time_ns()}")
            run_ids = []
            for _ in range(args.mirrors):
                rid = client.create_run(exp).info.run_id
                client.update_run(rid, "SCHEDULED")
                run_ids.append(rid)
            idle: list[float] = []
            stop = threading.Event()
            probe = threading.Thread(target=ui_probe, args=(server.uri, exp, stop, idle), daemon=True)
            probe.start()
            time.sleep(10)
            stop.set()
            probe.join()
            start_at = time.time() + 15 + 1.5 * args.procs  # every process has imported mlflow and made its stores
            share = [run_ids[i::args.procs] for i in range(args.procs)]
            for i, runs in enumerate(share):
                (tmp / f"runs{i}.json").write_text(json.dumps(runs))
                procs.append(subprocess.Popen(
                    [sys.executable, __file__, "--worker", "--uri", server.uri, "--runs-file", str(tmp / f"runs{i}.json"),
                     "--tmp", str(tmp / "stores"), "--out", str(tmp / f"out{i}.json"), "--start-at", str(start_at),
                     "--seconds", str(args.seconds), "--keys", str(args.keys)],
                    env=dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=server.uri)))
            loaded: list[float] = []
            loads: list[float] = []
            cpu0 = session_cpu_s(server.proc.pid)
            stop = threading.Event()
            time.sleep(max(0.0, start_at - time.time()))
            probe = threading.Thread(target=ui_probe, args=(server.uri, exp, stop, loaded), daemon=True)
            probe.start()
            while any(p.poll() is None for p in procs):
                loads.append(os.getloadavg()[0])
                time.sleep(5)
            stop.set()
            probe.join()
            server_cpu = session_cpu_s(server.proc.pid) - cpu0
            assert all(p.returncode == 0 for p in procs), [p.returncode for p in procs]
            outs = [json.loads((tmp / f"out{i}.json").read_text()) for i in range(args.procs)]
            mirrored = count_on_server(backend, run_ids)
            statuses = statuses_of(server.uri, exp, args.mirrors)
            synced = sync_phase(server.uri, tmp / "stores", run_ids)
            counts = count_on_server(backend, run_ids)
            statuses_after = statuses_of(server.uri, exp, args.mirrors)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            server.stop()

    logged = {rid: n for o in outs for rid, n in o["logged"].items()}
    requests = [r for o in outs for r in o["requests"]]
    window = [r for r in requests if start_at <= r[0] < start_at + args.seconds]
    lags = [x for o in outs for x in o["lags"]]
    by_endpoint: dict[str, int] = {}
    for r in requests:
        by_endpoint[r[2]] = by_endpoint.get(r[2], 0) + 1
    lost = sum(max(0, logged[r] - counts[r][1]) for r in run_ids)
    doubled = sum(counts[r][0] - counts[r][1] for r in run_ids) + sum(max(0, counts[r][1] - logged[r]) for r in run_ids)
    last_answer = max(o["finished"] for o in outs)
    return {
        "store": args.store,
        "mirrors": args.mirrors, "processes": args.procs, "mirrors_per_process": round(args.mirrors / args.procs, 1),
        "points_per_second_per_run": args.keys, "seconds": args.seconds,
        "server": "mlflow server --workers 1 (" + ("PostgreSQL" if args.store == "postgresql" else "SQLite") + " backend), 127.0.0.1",
        "requests_per_s_while_logging": round(len(window) / args.seconds, 1),
        "requests_total": len(requests), "requests_failed": sum(1 for r in requests if not r[3]),
        "requests_by_endpoint": by_endpoint,
        "request_s_p50": pct([r[1] for r in window], 0.5), "request_s_p99": pct([r[1] for r in window], 0.99),
        "points_logged": sum(logged.values()),
        "points_on_server_when_mirrors_ended": sum(c[1] for c in mirrored.values()),
        "run_statuses_when_mirrors_ended": statuses,
        **synced, "run_statuses_after_sync": statuses_after,
        "points_on_server_after_sync": sum(c[1] for c in counts.values()),
        "lost": lost, "doubled": doubled,
        "request_failure_causes": {k: sum(o["causes"].get(k, 0) for o in outs) for k in {k for o in outs for k in o["causes"]}},
        "runs_delivered_by_mirror": sum(v for o in outs for v in o["delivered"].values()),
        "lag_s_p50": pct(lags, 0.5), "lag_s_p99": pct(lags, 0.99), "lag_s_max": pct(lags, 1.0),
        "all_delivered_s_after_logging_ended": round(last_answer - (start_at + args.seconds), 1),
        "search_runs_idle_s_p50": pct(idle, 0.5), "search_runs_idle_s_p99": pct(idle, 0.99),
        "search_runs_loaded_s_p50": pct(loaded, 0.5), "search_runs_loaded_s_p99": pct(loaded, 0.99),
        "search_runs_loaded_n": len(loaded),
        "worker_maxrss_mb": [o["maxrss_mb"] for o in outs],
        "cpu_s_mirrors_and_writers": round(sum(o["cpu_s"] for o in outs), 1), "cpu_s_server": round(server_cpu, 1),
        "wall_s_mirrors": round(last_answer - start_at, 1),
        "load_avg_1m_during": {"mean": round(statistics.mean(loads), 1) if loads else None,
                               "max": round(max(loads), 1) if loads else None},
    }


def resume(args) -> None:
    """The sync phase and the count for a finished load run left in `args.resume` (its server restarted on its
    SQLite store): for a result taken before the bench had its sync phase."""
    from mlflow.tracking import MlflowClient

    from tests.services.mlflow_server import MlflowServer

    tmp = Path(args.resume)
    backend = f"sqlite:///{tmp / 'server' / 'server.db'}"
    run_ids = [r for i in range(args.procs) for r in json.loads((tmp / f"runs{i}.json").read_text())]
    outs = [json.loads((tmp / f"out{i}.json").read_text()) for i in range(args.procs)]
    logged = {rid: n for o in outs for rid, n in o["logged"].items()}
    server = MlflowServer(tmp / "server")
    server.restart(timeout=240)
    try:
        exp = MlflowClient(server.uri).get_run(run_ids[0]).info.experiment_id
        synced = sync_phase(server.uri, tmp / "stores", run_ids)
        counts = count_on_server(backend, run_ids)
        after = statuses_of(server.uri, exp, len(run_ids))
    finally:
        server.stop()
    out = Path(args.out)
    data = json.loads(out.read_text())
    r = data[args.store]
    r["points_on_server_when_mirrors_ended"] = r.pop("points_on_server")
    r["run_statuses_when_mirrors_ended"] = r.pop("run_statuses")
    r.pop("runs_finished", None)
    r.update({**synced, "run_statuses_after_sync": after,
              "points_on_server_after_sync": sum(c[1] for c in counts.values()),
              "lost": sum(max(0, logged[x] - counts[x][1]) for x in run_ids),
              "doubled": sum(counts[x][0] - counts[x][1] for x in run_ids) + sum(max(0, counts[x][1] - logged[x]) for x in run_ids),
              "sync_note": "the sync phase ran after the load, its server restarted on the same store (--resume)"})
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(r, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--mirrors", type=int, default=200)
    ap.add_argument("--procs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--keys", type=int, default=10, help="metrics a run logs each second (one step)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "mirror_load.json"))
    ap.add_argument("--resume", help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--uri", help=argparse.SUPPRESS)
    ap.add_argument("--runs-file", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.resume:
        resume(args)
        return 0
    load_before = round(os.getloadavg()[0], 2)
    result = bench(args)
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.is_file() else {}
    data.update({
        "what": "N runs' mirrors (the product's runtime/mirror.Mirror, a writer each logging one step of "
                "`keys` metrics a second into its local store) delivering into one mlflow server at once; "
                "bench/bench_mirror_load.py's docstring says how each number is taken",
        "design": "one process importing mlflow with the mirror takes ~165 MB (measured; 200 would need ~33 GB of the "
                  "24 GiB shared machine): `processes` processes each run mirrors/processes mirrors and their writers "
                  "as threads (a run's mirror is a thread of its worker anyway); the mirror's once-per-run fingerprint "
                  "step is left out; the runs whose mirror did not end them within REPRO_MIRROR_GRACE (60 s) are "
                  "then replayed as `repro sync` does (submit/offline.replay_bundle, 4 threads) before counting",
        args.store: {**result, "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "load_avg_1m_before": load_before, "mem_gib": round(
                                               os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
    })
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data[args.store], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
