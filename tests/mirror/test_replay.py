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


class LostCreation(LostAnswers):
    """... and whose next `create_logged_model` reaches the store but loses its answer."""

    def create_logged_model(self, *a, **kw):
        self.client.create_logged_model(*a, **kw)
        raise ConnectionError("connection reset after the request was sent")


def test_logged_models_become_the_servers_once_with_their_metrics_and_files(tracking, tmp_path):
    """An MLflow 3 LoggedModel of the local run: made once on the server (even when the answer to its
    creation is lost) with its params and tags, its linked metric, then its files and status."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    from repro_mlflow import tags as T

    real = MlflowClient()
    rid = real.create_run(real.create_experiment("r")).info.run_id
    _uri, lid = offline.start(tmp_path / "b", rid, tracking)
    local = offline_client(tmp_path / "b")
    m = local.create_logged_model(local.get_run(lid).info.experiment_id, name="net", source_run_id=lid,
                                  params={"alpha": "0.5"}, tags={"stage": "tried"})
    local.log_metric(lid, "acc", 0.75, step=2, model_id=m.model_id)
    client = LostCreation(real)
    rep = Replayer(client, rid, tmp_path / "b", settle_s=0)
    try:
        rep.step()
        raise AssertionError("the lost answer must surface")
    except ConnectionError:
        pass
    client.create_logged_model = real.create_logged_model  # the server answers again
    rep.step()
    [made] = real.search_logged_models([real.get_run(rid).info.experiment_id])
    assert (made.name, made.params, made.source_run_id) == ("net", {"alpha": "0.5"}, rid)
    assert made.tags["stage"] == "tried" and made.tags[T.LOCAL_MODEL_ID] == m.model_id
    assert str(made.status).endswith("PENDING")
    assert [(x.key, x.value, x.step) for x in made.metrics] == [("acc", 0.75, 2)]

    files = tmp_path / "files"
    files.mkdir()
    (files / "weights.txt").write_text("1 2 3")
    local.log_model_artifacts(m.model_id, str(files))
    local.log_model_params(m.model_id, {"beta": "2"})
    local.finalize_logged_model(m.model_id, LoggedModelStatus.READY)
    local.log_outputs(lid, [LoggedModelOutput(m.model_id, 0)])
    rep.step(final=True)
    made = real.get_logged_model(made.model_id)
    assert str(made.status).endswith("READY") and made.params == {"alpha": "0.5", "beta": "2"}
    assert [a.path for a in real.list_logged_model_artifacts(made.model_id)] == ["weights.txt"]
    assert [o.model_id for o in real.get_run(rid).outputs.model_outputs] == [made.model_id]
    assert "repro.replay.skipped" not in real.get_run(rid).data.tags
    # a model the project never finalized: made on the server, PENDING, and said in the run
    local.create_logged_model(local.get_run(lid).info.experiment_id, name="half", source_run_id=lid)
    rep.step(final=True)
    assert real.get_run(rid).data.tags[T.REPLAY_SKIPPED] == "logged models never finalized (PENDING, files not sent): 1"

    again = Replayer(real, rid, tmp_path / "b")  # a fresh process (repro sync): nothing twice
    again.step(final=True)
    assert not again.added
    assert sorted(m.name for m in real.search_logged_models([real.get_run(rid).info.experiment_id])) == ["half", "net"]
    assert len(real.get_logged_model(made.model_id).metrics) == 1


def test_a_point_sent_before_its_model_existed_reaches_the_model(tracking, tmp_path):
    """MLflow's `log_model` re-logs the run's points of its step with the new model's id. A point the mirror
    sent before the model existed is sent again, linked, so the server's model holds it, as plain MLflow's does."""
    from mlflow.entities import Metric

    real = MlflowClient()
    rid = real.create_run(real.create_experiment("r")).info.run_id
    _uri, lid = offline.start(tmp_path / "b", rid, tracking)
    local = offline_client(tmp_path / "b")
    local.log_metric(lid, "m", 1.0, step=0, timestamp=1000)
    rep = Replayer(real, rid, tmp_path / "b", settle_s=0)
    rep.step()  # "m" delivered, no model yet
    m = local.create_logged_model(local.get_run(lid).info.experiment_id, name="net", source_run_id=lid)
    local.log_batch(lid, metrics=[Metric("m", 1.0, 1000, 0, model_id=m.model_id)])  # what log_model does
    rep.step(final=True)
    [made] = real.search_logged_models([real.get_run(rid).info.experiment_id])
    assert [(x.key, x.value, x.step, x.timestamp) for x in made.metrics] == [("m", 1.0, 0, 1000)]
    assert [(x.value, x.step) for x in real.get_metric_history(rid, "m")] == [(1.0, 0)]  # still one point
    again = Replayer(real, rid, tmp_path / "b")  # a fresh process (repro sync): nothing twice
    again.step(final=True)
    assert not again.added and len(real.get_logged_model(made.model_id).metrics) == 1
