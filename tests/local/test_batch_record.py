"""The batch record: written at submit, validated when read, and the one source every caller rebuilds
the scheduler from (sync, status, the sweep's watcher, wait, logs, cancel): never the defaults."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from repro_mlflow import cli
from repro_mlflow.mlflow_plugin.backends import ReproSubmittedRun
from repro_mlflow.runtime import record as R
from repro_mlflow.schedulers.local import LocalConfig, LocalScheduler
from repro_mlflow.schedulers.protocol import RunSpec
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.sync import sync_runs
from repro_mlflow.sweep.progress import watch
from tests.helpers import wait_terminal

# not the defaults (parallel=1, env=None): what the record must carry to every poll
CONFIG = LocalConfig(parallel=2, env={"REPRO_TEST_MARK": "from-the-record"})
SLEEP = f"{sys.executable} -c \"import os, time; time.sleep(2); assert os.environ['REPRO_TEST_MARK'] == 'from-the-record'\""


@pytest.fixture
def polled(monkeypatch) -> list[LocalConfig]:
    """The config of every scheduler whose (real) poll is called."""
    seen: list[LocalConfig] = []
    real = LocalScheduler.poll

    def spy(self, job_ids):
        seen.append(self.config)
        return real(self, job_ids)

    monkeypatch.setattr(LocalScheduler, "poll", spy)
    return seen


def _submit(tracking: str, tmp_path: Path, n: int = 1, sweep: str | None = None) -> tuple[MlflowClient, str, list[str]]:
    client = MlflowClient(tracking)
    exp = client.create_experiment("record")
    tags = {"repro.sweep": sweep} if sweep else {}
    specs = [RunSpec("main", {"i": str(i)}, SLEEP, dict(tags)) for i in range(n)]
    return client, exp, submit_batch(client, LocalScheduler(CONFIG), specs, tmp_path, exp, tracking)


@pytest.mark.parametrize("content, says", [
    ({"runs": [], "env": {}, "cwd": "/x"}, "has no batch-record schema version (written by an older repro-mlflow?)"),
    ({"schema": "repro-mlflow/batch-record", "version": 2}, "has version 2; this repro-mlflow reads version 1"),
    ({"schema": "repro-mlflow/batch-record", "version": 1, "scheduler": {"name": "local"}, "tracking_uri": "x",
      "experiment_id": "1", "layout": {}, "runs": []}, "lacks 'config'"),
    ({"schema": "repro-mlflow/batch-record", "version": 1, "scheduler": {"name": "local", "config": []},
      "tracking_uri": "x", "experiment_id": "1", "layout": {}, "runs": []}, "scheduler.config must be an object"),
    ("{not json", "is not readable JSON"),
])
def test_a_record_not_of_this_version_is_refused_in_one_line(tmp_path, content, says):
    path = tmp_path / "batch.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(R.RecordError) as e:
        R.read(path)
    assert says in str(e.value) and "\n" not in str(e.value)


def _submitted_run(client: MlflowClient, tmp_path: Path, record: Path | None) -> str:
    """A run as submit_batch leaves it, of a local job that is gone (its batch directory is empty)."""
    exp = client.create_experiment("by-hand")
    tags = {"repro.backend": "local", "repro.job_id": f"host:{tmp_path / 'gone'}:0", "repro.workdir": str(tmp_path)}
    if record:
        tags["repro.record"] = str(record)
    return client.create_run(exp, tags=tags).info.run_id


def test_sync_refuses_an_unversioned_record_and_leaves_the_run(tracking, tmp_path, capsys):
    client = MlflowClient(tracking)
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"runs": [], "cwd": str(tmp_path)}))  # what an older manifest looks like
    rid = _submitted_run(client, tmp_path, path)
    assert cli.main(["sync"]) == 1
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if "no batch-record schema version" in ln]
    assert len(lines) == 1 and rid in lines[0], err
    assert out.startswith("checked 0 unfinished run(s); ended 0;")  # never polled with the defaults
    assert client.get_run(rid).info.status == "RUNNING"


def test_run_without_a_record_is_polled_with_defaults_and_said_once(tracking, tmp_path, polled):
    client = MlflowClient(tracking)
    rid = _submitted_run(client, tmp_path, None)  # as a run submitted before records existed
    report = sync_runs(client, [client.get_run(rid)])
    assert report.notes == ["note: run(s) of local have no batch record (submitted by an older repro-mlflow): "
                            "polled with the default config"]
    assert polled == [LocalConfig()]
    assert report.ended == {rid: "FAILED"}  # its job is gone


# ---- each caller polls the scheduler the record describes ------------------------------------------
def test_record_written_at_submit_and_repro_sync_polls_its_scheduler(tracking, tmp_path, polled, capsys):
    client, exp, rids = _submit(tracking, tmp_path, n=2)
    tags = client.get_run(rids[0]).data.tags
    path = Path(tags["repro.record"])
    assert path.parent == Path(tags["repro.workdir"]) and path.name == "batch.json"
    raw = json.loads(path.read_text())
    assert raw["schema"] == "repro-mlflow/batch-record" and raw["version"] == 1
    rec = R.read(path)
    assert rec.scheduler == "local"
    assert rec.config == {"parallel": 2, "python": None, "env": {"REPRO_TEST_MARK": "from-the-record"}}
    assert rec.tracking_uri == tracking and rec.experiment_id == exp
    assert [(r.index, r.run_id, r.entry_point, r.params, r.attempt) for r in rec.runs] == \
        [(0, rids[0], "main", {"i": "0"}, 1), (1, rids[1], "main", {"i": "1"}, 1)]
    assert [r.job_id for r in rec.runs] == [client.get_run(r).data.tags["repro.job_id"] for r in rids]
    assert rec.layout["workdir"] == tags["repro.workdir"] and rec.layout["project"] == str(tmp_path)

    assert cli.main(["sync"]) == 0, capsys.readouterr().err
    assert polled and set(map(repr, polled)) == {repr(CONFIG)}
    assert "no batch record" not in capsys.readouterr().err
    assert [r.info.status for r in wait_terminal(rids, timeout=120)] == ["FINISHED"] * 2


def test_repro_status_watch_polls_the_recorded_scheduler(tracking, tmp_path, polled):
    client, _exp, [rid] = _submit(tracking, tmp_path)
    assert cli.main(["status", "--watch", "--interval", "0.3"]) == 0
    assert client.get_run(rid).info.status == "FINISHED"
    assert polled and set(map(repr, polled)) == {repr(CONFIG)}


def test_sweep_watcher_polls_the_recorded_scheduler(tracking, tmp_path, polled):
    client, exp, rids = _submit(tracking, tmp_path, n=2, sweep="s-record")
    out = watch(client, exp, "s-record", rids, poll_interval=0.3, console=Console(file=io.StringIO()))
    assert out.ok and out.counts == {"FINISHED": 2}
    assert polled and set(map(repr, polled)) == {repr(CONFIG)}


def test_wait_polls_the_recorded_scheduler(tracking, tmp_path, polled):
    client, _exp, [rid] = _submit(tracking, tmp_path)
    assert ReproSubmittedRun(rid, client=client).wait(poll_s=0.3) is True  # made from the run id alone
    assert polled and set(map(repr, polled)) == {repr(CONFIG)}


def test_a_slurm_batch_with_requeue_is_rebuilt_with_requeue(tracking, tmp_path):
    """The bug the record fixes: a batch submitted with requeue: true was polled as requeue=False."""
    from repro_mlflow.schedulers.protocol import Batch
    from repro_mlflow.schedulers.slurm import SlurmConfig, SlurmScheduler
    from repro_mlflow.submit.batch import batch_record
    from repro_mlflow.submit.rebuild import Rebuilder

    cfg = SlurmConfig(requeue=True, time="10", extra_args=["--exclusive"], env={"A": "1"})
    spec = RunSpec("main", {"x": "1"}, "true", {"repro.attempt": "2"}, run_id="r" * 32)
    batch = Batch([spec], tmp_path, tracking, "1", tmp_path, layout={"job_dirs": str(tmp_path / "jobs")})
    path = R.write(tmp_path / R.RECORD_FILE, batch_record(SlurmScheduler(cfg), batch, ["17_0"]))
    client = MlflowClient(tracking)
    run = client.create_run(client.create_experiment("slurm-record"),
                            tags={"repro.backend": "slurm", "repro.record": str(path), "repro.job_id": "17_0"})
    sched = Rebuilder().scheduler(run)
    assert isinstance(sched, SlurmScheduler) and sched.config == cfg
    rec = R.read(path)
    assert rec.layout["job_dirs"] == str(tmp_path / "jobs") and rec.runs[0].attempt == 2
