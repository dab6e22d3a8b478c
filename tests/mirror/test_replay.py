"""The one replay, step by step: incremental, and exactly once when a request fails after the server applied it."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from repro_mlflow.submit.offline import offline_client
from repro_mlflow.runtime import offline
from repro_mlflow.runtime.replay import Replayer


class LostAnswers:
    """A client whose next `log_batch` reaches the store but whose answer is lost (raises after applying)."""

    def __init__(self, client: MlflowClient):
        self.client, self.lose_next = client, False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def log_batch(self, *a, **kw):
        out = self.client.log_batch(*a, **kw)
        if self.lose_next:
            self.lose_next = False
            raise ConnectionError("connection reset after the request was sent")
        return out


def test_steps_send_each_point_once_even_when_an_answer_is_lost(tracking, tmp_path):
    real = MlflowClient()
    rid = real.create_run(real.create_experiment("r")).info.run_id
    real.update_run(rid, "SCHEDULED")
    _uri, lid = offline.start(tmp_path / "b", rid, tracking)
    local = offline_client(tmp_path / "b")
    client = LostAnswers(real)
    rep = Replayer(client, rid, tmp_path / "b", settle_s=0)

    local.log_param(lid, "lr", "0.1")
    for s in range(3):
        local.log_metric(lid, "loss", 1.0 / (s + 1), step=s)
    rep.step()
    assert real.get_run(rid).info.status == "RUNNING"  # first contact
    assert [m.step for m in real.get_metric_history(rid, "loss")] == [0, 1, 2]

    for s in range(3, 6):
        local.log_metric(lid, "loss", 1.0 / (s + 1), step=s)
    client.lose_next = True
    try:
        rep.step()
        raise AssertionError("the lost answer must surface")
    except ConnectionError:
        pass
    local.log_metric(lid, "loss", 1.0 / 7, step=6)
    rep.step()  # resends only what the server lacks
    assert sorted(m.step for m in real.get_metric_history(rid, "loss")) == list(range(7))

    local.set_tag(lid, "t", "1")
    local.log_text(lid, "x", "out/a.txt")
    rep.step(final=True)
    rep.end("FINISHED", None, 12345)
    run = real.get_run(rid)
    assert (run.info.status, run.info.end_time) == ("FINISHED", 12345)
    assert run.data.params == {"lr": "0.1"} and run.data.tags["t"] == "1"
    assert [a.path for a in real.list_artifacts(rid, "out")] == ["out/a.txt"]

    again = Replayer(real, rid, tmp_path / "b")  # a fresh process (repro sync): nothing twice
    again.step(final=True)
    assert not again.added
    assert sorted(m.step for m in real.get_metric_history(rid, "loss")) == list(range(7))
