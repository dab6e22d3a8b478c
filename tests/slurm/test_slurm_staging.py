"""No credential reaches a Slurm node: a project with every credential planted, in a folder and in a git
checkout that tracks them, submitted to the real one-node cluster; the job looks for them where it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers.slurm import SlurmScheduler
from tests.planted import NOTICE, ORDINARY, files_holding_marker, make_git_checkout, plant, planted_in
from tests.slurm.test_slurm_backend import MLPROJECT, _submit, _sync_until


@pytest.mark.parametrize("git", [False, True], ids=["folder", "git"])
def test_no_planted_credential_is_staged_and_the_notice_is_one_line(git, slurm_cluster, tracking, tmp_path, capfd):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text(MLPROJECT + "  check:\n    command: \"python check_staged.py\"\n")
    plant(proj)
    if git:
        make_git_checkout(proj)
    client = MlflowClient()
    exp = client.create_experiment("slurm-staging")
    capfd.readouterr()
    _sched, [rid] = _submit(proj, "check", [{}], exp, tracking, time="10")
    assert capfd.readouterr().err.splitlines().count(NOTICE) == 1

    tags = client.get_run(rid).data.tags
    staged = SlurmScheduler().jobdir(Path(tags["repro.workdir"])) / "project"
    names = [p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()]
    assert planted_in(names) == [] and files_holding_marker(staged) == []
    assert set(ORDINARY) <= set(names)

    status = _sync_until(client, [rid], timeout=300)[rid]
    log = SlurmScheduler().log_path(tags["repro.job_id"], Path(tags["repro.workdir"])).read_text()
    assert status == "FINISHED", log[-2000:]
    assert "planted credentials seen here: none" in log and f"ordinary files seen here: {len(ORDINARY)}" in log
