"""The mirror's read of a long run's local store: a poll reads only the new points, not the whole history.

A run's local store (runtime/localstore.py, MLflow's SQLite store) holds one metric with `--points`
points (default 100,000, logged through MlflowClient.log_batch); then `--new` (10) more are logged and
read as the mirror's next poll reads them (`SqlLocalRun.new_points`: the points after those already
read, through MLflow's paged `SqlAlchemyStore.get_metric_history`). The reference, measured in the
same run, is the full read of the history, which every poll made before (and the replay's final step
still makes once). Reported: both times (median of `--repeats`), their ratio, the machine and its load.

    .venv/bin/python bench/bench_local_reader.py [--points 100000 --new 10 --repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--new", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "bench/results/local_reader.json"))
    args = p.parse_args(argv)

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from repro_mlflow.runtime import localstore

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        uri, _exp, rid = localstore.create(Path(tmp) / "run", Path(tmp) / "cache")
        writer = MlflowClient(tracking_uri=uri)
        for b in range(0, args.points, 1000):
            writer.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1), 1_000_000 + s, s)
                                           for s in range(b, min(b + 1000, args.points))])
        reader = localstore.SqlLocalRun(uri, rid)
        assert len(reader.new_points()["loss"]) == args.points
        full, poll = [], []
        for r in range(args.repeats):
            base = args.points + r * args.new
            writer.log_batch(rid, metrics=[Metric("loss", 0.5, 5_000_000 + base + s, base + s) for s in range(args.new)])
            t = time.perf_counter()
            got = reader.new_points()["loss"]
            poll.append(time.perf_counter() - t)
            assert [m.step for m in got] == list(range(base, base + args.new))
            t = time.perf_counter()
            reader.new_points(full=True)  # the whole history read again, as every poll did before
            full.append(time.perf_counter() - t)
    result = {
        "benchmark": "local_reader",
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": [round(load_start[0], 2), round(os.getloadavg()[0], 2)]},
        "points": args.points, "new_per_poll": args.new, "repeats": args.repeats,
        "poll_s": round(statistics.median(poll), 4), "full_read_s": round(statistics.median(full), 3),
        "ratio_full_to_poll": round(statistics.median(full) / statistics.median(poll), 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
