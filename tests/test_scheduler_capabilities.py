"""Capabilities a scheduler declares (schedulers/protocol.SchedulerBase) instead of callers naming "local"."""

from pathlib import Path

import pytest

from repro_mlflow.envs import project_env
from repro_mlflow.errors import ReproError
from repro_mlflow.schedulers import SCHEDULERS, get_scheduler, scheduler_class


def test_each_scheduler_declares_its_capabilities():
    shared = {name: scheduler_class(name).shared_fs for name in SCHEDULERS if scheduler_class(name)}
    assert shared["local"] is True and shared["slurm"] is True
    assert shared.get("htcondor", False) is False and shared.get("ec2", False) is False
    assert scheduler_class("local").runs_here is True and scheduler_class("slurm").runs_here is False
    assert "python" in scheduler_class("local").config_fields()
    assert "parallel" in scheduler_class("local").config_fields()


def test_local_job_id_and_log_path(tmp_path):
    s = get_scheduler("local", {})
    job = f"host:{tmp_path}:3"
    assert s.show_job_id(job) == "3"
    assert s.log_path(job, tmp_path) == tmp_path / "3" / "output.log"
    slurm = get_scheduler("slurm", {})
    assert slurm.show_job_id("1234_0") == "1234_0"


def test_gpu_comes_from_the_config():
    assert get_scheduler("slurm", {"gres": "gpu:1"}).gives_gpu() is True
    assert get_scheduler("slurm", {}).gives_gpu() is False
    local_has = Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())
    assert get_scheduler("local", {}).gives_gpu() is local_has


def test_declared_env_refused_where_the_filesystem_is_not_shared(tmp_path):
    (tmp_path / "MLproject").write_text("name: p\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: echo hi\n")
    (tmp_path / "python_env.yaml").write_text("python: '3.12'\ndependencies: []\n")
    with pytest.raises(ReproError, match="cannot build on its workers"):
        project_env.resolve(tmp_path, None, "htcondor", shared_fs=False)
