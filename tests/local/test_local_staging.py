"""repro-local stages nothing: its runs run in the project folder itself, on the submitting machine, so
no copy of the project (nor of a credential in it) is made and there is nothing to say at submit."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers.local import LocalScheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from tests.helpers import wait_terminal
from tests.planted import files_holding_marker, plant


def test_local_runs_in_the_project_folder_and_copies_nothing(tracking, tmp_path, capfd):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text(
        "name: p\nentry_points:\n  where:\n"
        "    command: \"python -c 'import os, mlflow; mlflow.start_run(); mlflow.set_tag(\\\"cwd\\\", os.getcwd())'\"\n")
    plant(proj)
    exp = mlflow.set_experiment("local-staging").experiment_id
    capfd.readouterr()
    [rid] = submit_batch(MlflowClient(), LocalScheduler(), [make_spec(proj, "where", {})], proj, exp, tracking)
    [run] = wait_terminal([rid], timeout=120)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    assert os.path.realpath(run.data.tags["cwd"]) == os.path.realpath(proj)  # in place, not a staged copy
    assert "not shipped" not in capfd.readouterr().err
    workdir = Path(run.data.tags["repro.workdir"])
    assert workdir.is_dir() and not workdir.is_relative_to(proj)
    assert files_holding_marker(workdir) == []  # the batch directory holds no copy of the project
