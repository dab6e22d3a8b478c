"""The one worker entry, `python -m repro_mlflow.runtime <record> <index>`, as a job that travels (HTCondor,
EC2) runs it: the record's worker paths relative to the record, the batch reaching the command through
the record alone (nothing in the starter's environment), the results in the run's own directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.runtime import record as R
from repro_mlflow.submit.offline import replay_bundle

ROOT = Path(__file__).resolve().parents[2]
CHILD = ("import json, os, mlflow\n"
         "mlflow.start_run()\n"
         "mlflow.log_metric('m', float(os.environ['REPRO_TEST_PER_RUN']))\n"
         "json.dump({'cwd': os.getcwd(), 'common': os.environ['REPRO_TEST_COMMON']}, open('seen.json', 'w'))\n")


def _record(sandbox: Path, tracking: str, run_ids: list[str]) -> Path:
    """A record as HTCondor writes it: the project at `project/`, each run's files at `out/<i>`, offline."""
    (sandbox / "project").mkdir(parents=True)
    (sandbox / "project" / "child.py").write_text(CHILD)
    runs = [R.RecordRun(index=i, run_id=rid, job_id="", entry_point="main", params={},
                        command=f"{sys.executable} child.py", env={"REPRO_TEST_PER_RUN": str(i + 1)})
            for i, rid in enumerate(run_ids)]
    rec = R.BatchRecord(scheduler="htcondor", config={}, tracking_uri=tracking, experiment_id="0",
                        layout={"workdir": "/elsewhere/on/the/submit/side"}, runs=runs,
                        worker={"cwd": "project", "run_dir": "out/{index}", "env": {"REPRO_TEST_COMMON": "from-the-record"},
                                "offline": True})
    return R.write(sandbox / "batch.json", rec)


def test_entry_runs_the_indexed_run_from_the_record_alone(tracking, tmp_path):
    client = MlflowClient(tracking)
    exp = client.create_experiment("entry")
    rids = [client.create_run(exp).info.run_id for _ in range(2)]
    sandbox = tmp_path / "sandbox"
    record = _record(sandbox, tracking, rids)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "batch.json", "1"], cwd=sandbox, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    run_dir = sandbox / "out" / "1"
    seen = json.loads((sandbox / "project" / "seen.json").read_text())
    assert os.path.realpath(seen["cwd"]) == os.path.realpath(sandbox / "project")
    assert seen["common"] == "from-the-record"
    assert json.loads((run_dir / "status.json").read_text())["status"] == "FINISHED"
    assert not (sandbox / "out" / "0").exists()  # only the run of that index
    assert client.get_run(rids[1]).info.status == "RUNNING"  # offline: nothing reached the real store yet
    assert replay_bundle(client, rids[1], run_dir / "offline") is True
    run = client.get_run(rids[1])
    assert run.info.status == "FINISHED" and run.data.metrics["m"] == 2.0
    assert record.is_file()


@pytest.mark.parametrize("args, says", [
    (["batch.json", "7"], "has no run of index 7 (2 runs)"),
    (["nowhere.json", "0"], "batch record nowhere.json not found"),
])
def test_a_bad_record_or_index_is_one_line(tracking, tmp_path, args, says):
    sandbox = tmp_path / "sandbox"
    _record(sandbox, tracking, ["a" * 32, "b" * 32])
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", *args], cwd=sandbox,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and says in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (sandbox / "out").exists()  # nothing created on refusal


def test_the_records_env_sets_the_mirrors_grace(tmp_path):
    """REPRO_MIRROR_GRACE in the backend config's `env` (the record's worker env, not the worker's own
    environment) bounds the last delivery: with the tracking server away, the worker ends about 1 s after
    its command, leaving the bundle to `repro sync`, instead of trying for the 60 s default."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: the tracking server is away
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    sandbox = tmp_path / "sandbox"
    (sandbox / "project").mkdir(parents=True)
    rec = R.BatchRecord(scheduler="local", config={}, tracking_uri=uri, experiment_id="0",
                        layout={"workdir": str(sandbox)},
                        runs=[R.RecordRun(index=0, run_id="c" * 32, job_id="", entry_point="main", params={},
                                          command=f"{sys.executable} -c pass", env={})],
                        worker={"cwd": "project", "run_dir": "out/{index}", "env": {"REPRO_MIRROR_GRACE": "1"}})
    R.write(sandbox / "batch.json", rec)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRO_MIRROR_")}
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "batch.json", "0"], cwd=sandbox,
                       env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=180)
    exited_ms = time.time() * 1000
    assert p.returncode == 0, p.stderr
    assert "`repro sync` replays it" in p.stderr
    status = json.loads((sandbox / "out" / "0" / "status.json").read_text())
    assert status["status"] == "FINISHED"
    assert exited_ms - status["end_time"] < 30_000, p.stderr  # 1 s asked; the default would be 60 s
