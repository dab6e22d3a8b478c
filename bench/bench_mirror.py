"""Local-first logging under a slow tracking server, and the live mirror's lag.

The outage tests' entry point (tests/mirror/entry.py: 300 metric points over 60 s, params, a tag,
two artifacts) runs under the worker runtime against a real `mlflow server` (sqlite), once
directly and once through a proxy that holds every request 2 s (tests/services/delay_proxy.py).
Recorded: the entry point's wall time (its logging loop, and the whole runtime process) in both,
as a ratio (target: 1 within noise: training never waits on the server); and the mirror lag
while the server is up: for every point, the delay between its timestamp and the first time the
server shows it (polled every 0.25 s; target: median at most 5 s).

    .venv/bin/python bench/bench_mirror.py [--points 300 --seconds 60]
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

from tests.services.delay_proxy import DelayProxy  # noqa: E402
from tests.services.mlflow_server import MlflowServer  # noqa: E402

ENTRY = ROOT / "tests" / "mirror" / "entry.py"


def one_run(uri: str, watch_uri: str, args, tmp: Path, label: str) -> dict:
    """Run the entry point under the runtime, reporting to `uri`; watch the points arrive on `watch_uri`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(watch_uri)
    exp = client.create_experiment(f"bench-{label}-{time.time_ns()}")
    rid = client.create_run(exp).info.run_id
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT), REPRO_OFFLINE_DIR=str(tmp / label),
               ENTRY_POINTS=str(args.points), ENTRY_SECONDS=str(args.seconds), MLFLOW_DISABLE_TELEMETRY="true")
    arrived: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            t = time.time()
            try:
                for m in client.get_metric_history(rid, "loss"):
                    arrived.setdefault(m.step, t)
            except Exception:  # noqa: BLE001
                pass
            stop.wait(0.25)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--run-id", rid, "--", sys.executable, str(ENTRY)],
                       env=env, capture_output=True, text=True, timeout=args.seconds * 10)
    wall = time.monotonic() - t0
    time.sleep(1)
    stop.set()
    w.join()
    assert p.returncode == 0, p.stderr
    entry_wall = float(p.stdout.split("ENTRY_WALL ")[1].split()[0])
    hist = client.get_metric_history(rid, "loss")
    lags = [arrived[m.step] - m.timestamp / 1000 for m in hist if m.step in arrived]
    run = client.get_run(rid)
    return {"entry_loop_s": round(entry_wall, 2), "runtime_wall_s": round(wall, 2), "status": run.info.status,
            "points_on_server": len(hist), "lag_median_s": round(statistics.median(lags), 2),
            "lag_p90_s": round(sorted(lags)[int(0.9 * (len(lags) - 1))], 2), "lag_max_s": round(max(lags), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--delay", type=float, default=2.0, help="seconds the proxy holds every request")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "mirror.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    with MlflowServer.start(tmp / "server") as server:
        normal = one_run(server.uri, server.uri, args, tmp, "normal")
        with DelayProxy(("127.0.0.1", server.port), delay=args.delay) as proxy:
            late = one_run(proxy.uri, server.uri, args, tmp, "late")
    result = {
        "what": f"tests/mirror/entry.py ({args.points} points over {args.seconds:.0f} s) under the runtime; "
                f"a real mlflow server (sqlite), directly and behind a proxy holding every request {args.delay} s",
        "normal": normal, f"late_{args.delay:g}s": late,
        "entry_loop_ratio_late_over_normal": round(late["entry_loop_s"] / normal["entry_loop_s"], 3),
        "runtime_wall_ratio_late_over_normal": round(late["runtime_wall_s"] / normal["runtime_wall_s"], 3),
        "target": "ratio 1 within noise; median mirror lag <= 5 s with the server up",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
