"""A batch larger than the cluster's MaxArraySize is split into several arrays (real one-node Slurm)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from repro_mlflow.errors import ReproError
from repro_mlflow.runtime.record import read as read_record
from repro_mlflow.schedulers.slurm import SlurmScheduler

from ..services.slurm import SlurmCluster

from .test_slurm_backend import _submit, _sync_until, exp, project  # noqa: F401 (fixtures)

BIN = Path(sys.executable).parent


@pytest.fixture
def small_arrays_cluster(slurm_cluster, monkeypatch):
    """A second one-node cluster with MaxArraySize=4 (task ids 0-3) and MaxJobCount=16, SLURM_CONF pointing at it."""
    with SlurmCluster.start(max_array_size=4, max_job_count=16) as cluster:
        monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster


def test_ten_runs_over_max_array_size_4_are_three_arrays_all_followed(
        small_arrays_cluster, project, exp, tracking, cli_env, tmp_path):  # noqa: F811
    assert SlurmScheduler().max_array_size() == 4
    sched, rids = _submit(project, "log", [{"x": i} for i in range(10)], exp, tracking, time="10", max_running=3)
    client = MlflowClient()
    job_ids = [client.get_run(r).data.tags["repro.job_id"] for r in rids]
    arrays = list(dict.fromkeys(j.split("_")[0] for j in job_ids))
    assert len(arrays) == 3
    assert [j.split("_")[1] for j in job_ids] == ["0", "1", "2", "3", "0", "1", "2", "3", "0", "1"]
    jobdir = Path(client.get_run(rids[0]).data.tags["repro.workdir"])
    # max_running=3 across the arrays: each waits for the one before it
    assert f"--dependency=afterany:{arrays[0]}" in (jobdir / "sbatch.1.cmd").read_text()
    assert f"--dependency=afterany:{arrays[1]}" in (jobdir / "sbatch.2.cmd").read_text()

    statuses = _sync_until(client, rids, timeout=600)
    assert list(statuses.values()) == ["FINISHED"] * 10, [client.get_run(r).data.tags.get("repro.status_reason")
                                                         for r in rids]
    for i, rid in enumerate(rids):  # every run ran its own parameters, and its output is its own
        run = client.get_run(rid)
        assert run.data.params["double"] == str(2 * i)
        assert run.data.metrics["final"] == 10 * i
        assert run.data.tags["repro.array_index"] == str(i)
        log = sched.log_path(run.data.tags["repro.job_id"], Path(run.data.tags["repro.workdir"]))
        assert log == log.parent.parent / "out" / f"{run.data.tags['repro.job_id']}.log"  # the file Slurm wrote to
        assert os.path.samefile(log, log.parent.parent / str(i) / "output.log")  # which is the run's own output.log
    p = subprocess.run([str(BIN / "repro"), "status"], env=dict(cli_env, COLUMNS="200", SLURM_CONF=str(small_arrays_cluster.conf)), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "10 repro run(s)" in p.stdout
    _assert_parts_recorded_and_throttled(client, rids, arrays)


def _assert_parts_recorded_and_throttled(client: MlflowClient, rids: list[str], arrays: list[str]) -> None:
    """The batch record lists the three arrays (first run, size, the array each waits for), and no more than
    max_running=3 commands ever ran at once across them (from the runs' own metric timestamps)."""
    record = read_record(client.get_run(rids[0]).data.tags["repro.record"])
    assert [(p["id"], p["first"], p["count"], p["after"]) for p in record.parts] == [
        (arrays[0], 0, 4, None), (arrays[1], 4, 4, arrays[0]), (arrays[2], 8, 2, arrays[1])]
    events = []
    for rid in rids:
        stamps = [m.timestamp for key in ("loss", "final") for m in client.get_metric_history(rid, key)]
        events += [(min(stamps), 1), (max(stamps), -1)]
    running = peak = 0
    for _t, step in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        running += step
        peak = max(peak, running)
    assert 1 <= peak <= 3


def test_a_batch_over_max_job_count_is_refused_in_one_line_before_any_run(
        small_arrays_cluster, project, exp, tracking):  # noqa: F811
    """MaxJobCount=16 counts every array task; sbatch over it would retry for ever, so 16 runs are refused
    (room for 15 in an empty queue) and nothing is created."""
    assert SlurmScheduler().limits() == {"MaxArraySize": 4, "MaxJobCount": 16}
    with pytest.raises(ReproError) as err:
        _submit(project, "main", [{"x": i} for i in range(16)], exp, tracking, time="10")
    msg = str(err.value)
    assert "\n" not in msg and "MaxJobCount=16" in msg and "room for 15" in msg, msg
    assert MlflowClient().search_runs([exp], run_view_type=ViewType.ALL) == []
    p = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i"], env=small_arrays_cluster.env,
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == []
