"""Offline results: the real runtime logs to its local file store always; with the tracking store out of
reach for the whole run it leaves it behind, and `replay_bundle` copies it into the real run exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.submit.offline import offline_client, replay_bundle
from repro_mlflow.runtime import offline

from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]

CHILD = ("import mlflow, time\n"
         "with mlflow.start_run():\n"
         "    mlflow.log_param('lr', '0.1')\n"
         "    mlflow.set_tag('user.tag', 'x')\n"
         "    for s in range(5):\n"
         "        mlflow.log_metric('loss', 1.0 / (s + 1), step=s)\n"
         "    mlflow.log_metric('acc', 0.5, step=0); time.sleep(0.01); mlflow.log_metric('acc', 0.5, step=0)\n"
         "    mlflow.log_text('hello', 'out/hello.txt')\n")


def _run_runtime(run_id: str, env: dict, code: str = CHILD, rc_expected: int = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--",
                        sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == rc_expected, p.stderr
    return p


@pytest.fixture
def real_run(tracking):
    client = MlflowClient()
    exp = client.create_experiment("offline")
    run = client.create_run(exp, tags={"repro.backend": "local"})
    client.update_run(run.info.run_id, "SCHEDULED")
    return client, run.info.run_id


def test_unreachable_server_logs_offline_and_replays_once(real_run, tmp_path):
    client, rid = real_run
    off = tmp_path / "offline"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=dead, REPRO_OFFLINE_DIR=str(off),
               REPRO_EXTRA_TAGS='{"repro.test.node": "${REPRO_TEST_NODE}", "repro.unset": "$NOT_SET_ANYWHERE"}',
               REPRO_TEST_NODE="n01", REPRO_MIRROR_GRACE="1")
    p = _run_runtime(rid, env)
    assert "tracking server" in p.stderr and "away" in p.stderr and "repro sync" in p.stderr
    meta = offline.read_bundle(off)
    assert meta["run_id"] == rid and meta["status"] == "FINISHED" and meta["end_time"]
    assert client.get_run(rid).info.status == "SCHEDULED"  # nothing reached the real store

    assert replay_bundle(client, rid, off) is True
    run = client.get_run(rid)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["user.tag"] == "x" and run.data.tags["repro.offline"] == "1"
    assert run.data.tags["repro.test.node"] == "n01" and "repro.unset" not in run.data.tags
    assert run.data.tags["repro.fp.hw"]  # the fingerprint was written offline and replayed
    loss = client.get_metric_history(rid, "loss")
    assert sorted((m.step, m.value) for m in loss) == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert len(client.get_metric_history(rid, "acc")) == 2  # logged twice (1 ms apart or more): twice here too
    offc = offline_client(off)
    src = {(m.step, m.value, m.timestamp) for m in offc.get_metric_history(meta["offline_run_id"], "loss")}
    assert src == {(m.step, m.value, m.timestamp) for m in loss}  # steps AND timestamps kept
    arts = {a.path for a in client.list_artifacts(rid)} | {a.path for a in client.list_artifacts(rid, "out")}
    assert "out/hello.txt" in arts and "repro" in arts, (p.stderr, list(off.rglob("*")))

    assert replay_bundle(client, rid, off) is False  # second replay adds nothing
    client.delete_tag(rid, "repro.replayed")
    replay_bundle(client, rid, off)  # even without the marker, nothing is duplicated
    assert len(client.get_metric_history(rid, "loss")) == 5
    assert len(client.get_metric_history(rid, "acc")) == 2


def test_failed_command_offline_keeps_reason(real_run, tmp_path):
    client, rid = real_run
    off = tmp_path / "off"
    env = dict(os.environ, PYTHONPATH=str(ROOT), REPRO_OFFLINE="1", REPRO_OFFLINE_DIR=str(off))
    _run_runtime(rid, env, code="import sys; sys.exit(3)", rc_expected=3)
    assert replay_bundle(client, rid, off)
    run = client.get_run(rid)
    assert run.info.status == "FAILED" and run.data.tags["repro.status_reason"] == "exit code 3"


def test_reachability_checks(tmp_path):
    assert offline.reachable(f"sqlite:///{tmp_path / 'nope' / 'mlflow.db'}") is False
    (tmp_path / "mlflow.db").touch()
    assert offline.reachable(f"sqlite:///{tmp_path / 'mlflow.db'}") is True
    assert offline.reachable(f"http://127.0.0.1:{free_port()}", timeout=1) is False
