"""Slurm config checks and the state mapping (no cluster needed)."""

from __future__ import annotations

import pytest

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.schedulers.slurm import SlurmConfig
from repro_mlflow.schedulers.slurm.config import check_time
from repro_mlflow.schedulers.slurm.states import map_state, parse_squeue
from repro_mlflow.errors import ReproError

# `squeue --array --states=all -h -O JobArrayID:64,State:24,RestartCnt:8,Reason:200` as Slurm 22.05 prints it
SQUEUE = (
    "7_0" + " " * 61 + "COMPLETED" + " " * 15 + "0" + " " * 7 + "None\n"
    "7_1" + " " * 61 + "RUNNING" + " " * 17 + "0" + " " * 7 + "None\n"
    "7_2" + " " * 61 + "PENDING" + " " * 17 + "1" + " " * 7 + "launch failed requeued held\n"
    "7_3" + " " * 61 + "NODE_FAIL" + " " * 15 + "0" + " " * 7 + "None\n"
    "7_4" + " " * 61 + "CANCELLED" + " " * 15 + "0" + " " * 7 + "None\n"
    "7_5" + " " * 61 + "TIMEOUT" + " " * 17 + "0" + " " * 7 + "TimeLimit\n"
)


def test_parse_squeue_maps_every_state():
    st = parse_squeue(SQUEUE)
    assert {k: v.state for k, v in st.items()} == {
        "7_0": "FINISHED", "7_1": "RUNNING", "7_2": "SCHEDULED", "7_3": "FAILED", "7_4": "KILLED", "7_5": "FAILED"}
    assert st["7_2"].attempt == 2 and st["7_2"].reason == "launch failed requeued held"
    assert st["7_3"].reason.startswith("NODE_FAIL")
    assert st["7_5"].reason.startswith("TIMEOUT")


@pytest.mark.parametrize("state,expected", [
    ("OUT_OF_MEMORY", "FAILED"), ("FAILED", "FAILED"), ("COMPLETING", "RUNNING"), ("CANCELLED by 0", "KILLED"),
    ("BOOT_FAIL", "FAILED"), ("REQUEUED", "SCHEDULED"), ("SUSPENDED", "RUNNING")])
def test_map_state(state, expected):
    assert map_state(state).state == expected


def test_preempted_follows_the_requeue_policy():
    assert map_state("PREEMPTED", requeue=True).state == "SCHEDULED"
    failed = map_state("PREEMPTED", requeue=False)
    assert failed.state == "FAILED" and "PREEMPTED" in failed.reason


@pytest.mark.parametrize("value", ["90", "30:00", "01:30:00", "1-12", "1-12:30", "2-00:00:00", "UNLIMITED"])
def test_good_time_limits(value):
    assert check_time(value) == value


@pytest.mark.parametrize("cfg,message", [
    ({"time": "2h"}, "is not a Slurm time limit"), ({"time": "1:99:00"}, "is not a Slurm time limit"),
    ({"mem": "lots"}, "is not a Slurm memory size"), ({"gpus": 1, "gres": "gpu:1"}, "gpus or gres"),
    ({"cpus_per_task": 0}, "at least 1"), ({"partion": "x"}, "unknown slurm backend-config key(s): partion"),
    ({"setup": "module load x"}, "must be list")])
def test_bad_config_is_one_line(cfg, message):
    with pytest.raises(ReproError) as e:
        get_scheduler("slurm", cfg)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_sbatch_options():
    opts = SlurmConfig(partition="gpu", time="10", cpus_per_task=4, mem="8G", gres="gpu:1", constraint="avx512",
                       extra_args=["--exclusive"]).sbatch_options()
    assert opts == ["--partition=gpu", "--time=10", "--cpus-per-task=4", "--mem=8G", "--gres=gpu:1",
                    "--constraint=avx512", "--no-requeue", "--exclusive"]
