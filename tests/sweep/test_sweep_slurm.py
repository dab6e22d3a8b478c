"""Sweeps on the test Slurm cluster: one job array per target, every run FINISHED.

The sweep machinery is what is tested here, so the runs are the framework-free echo project's (a Keras
example under Slurm: tests/slurm/test_slurm_backend.py::test_mlflow_run_mnist_under_slurm; the three
examples swept: tests/sweep/test_sweep_local.py)."""

from __future__ import annotations

import pytest

from .conftest import echo_args, runs, sweep

pytest.importorskip("repro_mlflow.schedulers.slurm")


@pytest.mark.slow
def test_six_configs_two_repeats_go_out_as_one_array(slurm_cluster, env, tracking):
    env = dict(env, SLURM_CONF=str(slurm_cluster.conf))
    p = sweep(echo_args("hardware=slurm", "seed=1,2,3,4,5,6", "repeat=0,1", "sweep=slurm6x2",
                        "hardware.backend_config.time=00:30:00", "poll_interval=1"), env, timeout=600)
    assert "12 submitted in 1 batch(es)" in p.stderr
    assert "sweep slurm6x2: 12 FINISHED" in p.stderr
    done = runs("tags.`repro.sweep` = 'slurm6x2' and attributes.status = 'FINISHED'")
    assert len(done) == 12
    arrays = {r.data.tags["repro.job_id"].split("_")[0] for r in done}
    assert len(arrays) == 1, arrays  # one sbatch --array for the target
    assert sorted(int(r.data.tags["repro.array_index"]) for r in done) == list(range(12))
    assert all(r.data.tags["repro.backend"] == "slurm" and r.data.tags["repro.target"] == "slurm" for r in done)
    assert all(r.data.tags.get("repro.fp.env") for r in done)
    assert len({r.data.tags["repro.config_hash"] for r in done}) == 6


def test_resume_on_slurm_submits_only_what_is_missing(slurm_cluster, env, tracking):
    from .conftest import wait_terminal

    env = dict(env, SLURM_CONF=str(slurm_cluster.conf))
    first = sweep(echo_args("hardware=slurm", "seed=1,2", "sweep=sres", "hardware.backend_config.time=00:05:00", "--detach"), env)
    assert "2 submitted in 1 batch(es)" in first.stderr
    wait_terminal("tags.`repro.sweep` = 'sres'", 2, env)
    more = sweep(echo_args("hardware=slurm", "seed=1,2,3", "sweep=sres", "hardware.backend_config.time=00:05:00", "poll_interval=1"), env)
    assert "1 submitted in 1 batch(es), 2 already FINISHED" in more.stderr
    assert "sweep sres: 1 FINISHED" in more.stderr
