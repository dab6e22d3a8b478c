"""Benchmark: a 20-run batch on a real one-machine HTCondor 25.14 pool, and what a `repro sync` of it costs.

    PYTHONPATH=. .venv/bin/python bench/bench_htcondor_pool.py [--runs 20]

Starts its own pool (tests/services/htcondor.py; needs root and ../shared/htcondor or HTCondor on
PATH), submits `--runs` runs of a tiny project (each logs a param and two metric steps, offline: the
store is sqlite on the submit side) as one cluster through `submit_batch`, then polls the batch's
event log (`HTCondorScheduler.poll`, every 0.2 s) to time submit -> first run RUNNING -> all FINISHED.
Then it counts the `htcondor2` calls and event-log reads of `sync_runs` (what `repro sync` runs) by
wrapping `htcondor2.Schedd` and `htcondor2.JobEventLog`: once while the batch runs, once when it has
finished (the replay), once more after (nothing left to do). Writes bench/results/htcondor_pool.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services.htcondor import CondorPool  # noqa: E402

MLPROJECT = """\
name: bench
entry_points:
  main:
    parameters:
      seed: {type: int, default: 0}
    command: "python train.py {seed}"
"""
TRAIN = """\
import sys
import mlflow
seed = int(sys.argv[1])
with mlflow.start_run():
    mlflow.log_param("seed", seed)
    mlflow.log_metric("y", seed * 2, step=0)
    mlflow.log_metric("y", seed * 3, step=1)
"""


class Counter:
    """Counts htcondor2 calls: Schedd() constructions and method calls, JobEventLog opens and events read."""

    def __init__(self, htcondor2):
        self.h = htcondor2
        self.calls: collections.Counter = collections.Counter()
        self.real_schedd, self.real_log = htcondor2.Schedd, htcondor2.JobEventLog

    def __enter__(self):
        counter, real_schedd, real_log = self, self.real_schedd, self.real_log

        class Schedd:
            def __init__(self, *a, **k):
                counter.calls["Schedd()"] += 1
                self._s = real_schedd(*a, **k)

            def __getattr__(self, name):
                fn = getattr(self._s, name)

                def call(*a, **k):
                    counter.calls[f"Schedd.{name}"] += 1
                    return fn(*a, **k)
                return call

        class JobEventLog:
            def __init__(self, path):
                counter.calls["JobEventLog()"] += 1
                self._log = real_log(path)

            def events(self, stop_after=None):
                for e in self._log.events(stop_after=stop_after):
                    counter.calls["events read"] += 1
                    yield e

            def close(self):
                self._log.close()

        self.h.Schedd, self.h.JobEventLog = Schedd, JobEventLog
        return self

    def __exit__(self, *exc):
        self.h.Schedd, self.h.JobEventLog = self.real_schedd, self.real_log

    def result(self) -> dict:
        return dict(sorted(self.calls.items()))


def bench(n: int) -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="repro-bench-") as tmp, CondorPool.start() as pool:
        pool_start_s = round(pool.start_s, 3)
        ready_s = round(time.perf_counter() - t0, 3)
        for k in ("CONDOR_CONFIG", "_CONDOR_SEC_TOKEN_DIRECTORY", "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS"):
            os.environ[k] = pool.env[k]
        import htcondor2
        from mlflow.tracking import MlflowClient

        htcondor2.reload_config()
        from repro_mlflow.schedulers import get_scheduler
        from repro_mlflow.submit.batch import submit_batch
        from repro_mlflow.submit.project import make_spec
        from repro_mlflow.submit.sync import sync_runs

        from tests.htcondor.job_user import install

        os.umask(0)  # the batch directory must be writable by the job user (the jobs' owner)
        install(pool.job_user)  # the 0700 batch directory and the record are the jobs' owner's, as a submitter's
        tmp = Path(tmp)
        tmp.chmod(0o755)
        proj = tmp / "proj"
        proj.mkdir()
        (proj / "MLproject").write_text(MLPROJECT)
        (proj / "train.py").write_text(TRAIN)
        home = pool.home / "bench"
        home.mkdir()
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ.update(MLFLOW_TRACKING_URI=uri, REPRO_HOME=str(home))
        client = MlflowClient(uri)
        exp = client.create_experiment("bench", artifact_location=(tmp / "artifacts").as_uri())
        sched = get_scheduler("htcondor", {"python": str(pool.python), "request_memory": "256MB",
                                           "request_disk": "200MB"})
        specs = [make_spec(proj, "main", {"seed": i}) for i in range(n)]

        ts = time.perf_counter()
        ids = submit_batch(client, sched, specs, proj, exp, uri)
        submit_s = time.perf_counter() - ts
        jobs = [client.get_run(i).data.tags["repro.job_id"] for i in ids]
        first_running = all_finished = None
        polls, poll_s, during = 0, 0.0, None
        while time.perf_counter() - ts < 600:
            p0 = time.perf_counter()
            states = sched.poll(jobs)
            poll_s += time.perf_counter() - p0
            polls += 1
            now = time.perf_counter() - ts
            got = [s.state for s in states.values()]
            if first_running is None and any(s in ("RUNNING", "FINISHED") for s in got):
                first_running = now
                with Counter(htcondor2) as c:  # a sync while the batch runs: nothing to replay yet
                    sync_runs(client, [client.get_run(i) for i in ids])
                during = c.result()
            if all(s == "FINISHED" for s in got):
                all_finished = now
                break
            if any(s in ("FAILED", "KILLED") for s in got):
                raise RuntimeError(f"a run did not finish: {[(s.state, s.reason) for s in states.values()]}")
            time.sleep(0.2)
        if all_finished is None:
            raise RuntimeError("the batch did not finish within 600 s")
        with Counter(htcondor2) as c:
            t_sync = time.perf_counter()
            res = sync_runs(client, [client.get_run(i) for i in ids])
            replay_sync_s = time.perf_counter() - t_sync
        replay = c.result()
        runs = [client.get_run(i) for i in ids]
        assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
        assert all(len(client.get_metric_history(r.info.run_id, "y")) == 2 for r in runs)
        with Counter(htcondor2) as c:
            sync_runs(client, runs)
        again = c.result()
        log_events = sum(1 for _ in htcondor2.JobEventLog(str(Path(runs[0].data.tags["repro.workdir"]) / "cluster.log"))
                         .events(stop_after=0))
        return {
            "runs": n,
            "pool": {"start_s": pool_start_s, "ready_with_job_python_s": ready_s, "start_budget_s": 60,
                     "slot_cpus": pool.cpus, "machine_cpus": os.cpu_count()},
            "batch": {"submit_batch_s": round(submit_s, 3), "submit_to_first_running_s": round(first_running, 3),
                      "submit_to_all_finished_s": round(all_finished, 3), "polls": polls,
                      "mean_poll_ms": round(poll_s * 1000 / polls, 2), "events_in_log": log_events},
            "repro_sync_htcondor2_calls": {
                "while_running": during, "after_finished_replay": replay, "replayed_runs": len(res.replayed),
                "replay_sync_s": round(replay_sync_s, 3), "again_nothing_to_do": again},
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    from importlib.metadata import version

    out = {"benchmark": "htcondor_pool", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2),
                    "htcondor": "25.14.0 (../shared/htcondor)", "htcondor_wheel": version("htcondor")},
           **bench(args.runs)}
    dest = ROOT / "bench" / "results" / "htcondor_pool.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
