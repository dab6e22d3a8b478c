"""A requeued job logs on into the same local run: each metric step reaches the real run once; and a
bundle of the previous layout (MLflow's file store `mlruns/`) is still replayed by `repro sync`."""

from __future__ import annotations

import json
import time

from mlflow.tracking import MlflowClient

from repro_mlflow.runtime import offline
from repro_mlflow.runtime.replay import open_local
from repro_mlflow.submit.offline import replay_bundle


def _log(client: MlflowClient, run_id: str, key: str, points: list[tuple[float, int]]) -> None:
    for value, step in points:
        client.log_metric(run_id, key, value, step=step)
    time.sleep(0.01)  # the next attempt begins in a later millisecond


def test_a_restarted_attempt_repeats_no_step(tmp_path):
    uri, local = offline.start(tmp_path, "real", None)
    c = MlflowClient(uri)
    _log(c, local, "loss", [(1.0 / (s + 1), s) for s in range(4)])  # attempt 1: steps 0..3
    _log(c, local, "acc", [(0.1, 0), (0.2, 0)])  # two points at one step, one attempt: both kept
    offline.requeued(tmp_path)
    _uri2, again = offline.start(tmp_path, "real", None)
    assert again == local  # the same local run
    _log(c, local, "loss", [(2.0 / (s + 1), s) for s in range(10)])  # attempt 2 starts over
    _log(c, local, "acc", [(0.3, 0), (0.9, 1)])
    _log(c, local, "final", [(0.5, 0)])  # first logged by attempt 2
    points = open_local(tmp_path).new_points()
    assert [(m.step, m.value) for m in points["loss"]] == [(s, 1.0 / (s + 1)) for s in range(4)] + \
        [(s, 2.0 / (s + 1)) for s in range(4, 10)]
    assert [(m.step, m.value) for m in points["acc"]] == [(0, 0.1), (0, 0.2), (1, 0.9)]
    assert [(m.step, m.value) for m in points["final"]] == [(0, 0.5)]
    # read incrementally (the mirror's way), the same points, each once
    run = open_local(tmp_path)
    assert len(run.new_points("loss")["loss"]) == 10
    _log(c, local, "loss", [(9.0, 3), (0.01, 10)])
    assert [(m.step, m.value) for m in run.new_points("loss")["loss"]] == [(10, 0.01)]
    assert run.new_points("loss") == {}


def test_a_bundle_of_the_previous_layout_is_still_replayed(tmp_path):
    bundle, local = tmp_path / "old", "0123456789abcdef0123456789abcdef"
    run_dir = bundle / "mlruns" / "0" / local
    for sub, files in {"params": {"lr": "0.1"}, "tags": {"user.tag": "x"},
                       "metrics": {"loss": "".join(f"{1000 + s} {1.0 / (s + 1)} {s}\n" for s in range(3))},
                       "artifacts/out": {"hello.txt": "hello"}}.items():
        (run_dir / sub).mkdir(parents=True)
        for name, text in files.items():
            (run_dir / sub / name).write_text(text)
    client = MlflowClient(f"sqlite:///{tmp_path / 'real.db'}")
    rid = client.create_run(client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    (bundle / "bundle.json").write_text(json.dumps({"run_id": rid, "offline_run_id": local, "experiment_id": "0",
                                                    "status": "FINISHED", "reason": None, "end_time": 5000}))
    assert replay_bundle(client, rid, bundle) is True
    run = client.get_run(rid)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1"} and run.data.tags["user.tag"] == "x"
    assert sorted((m.step, m.timestamp) for m in client.get_metric_history(rid, "loss")) == [(s, 1000 + s) for s in range(3)]
    assert [a.path for a in client.list_artifacts(rid, "out")] == ["out/hello.txt"]
    assert replay_bundle(client, rid, bundle) is False  # exactly once
