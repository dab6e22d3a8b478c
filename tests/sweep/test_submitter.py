"""The submission runs in a second process started before Hydra (sweep/submitter.py); REPRO_SWEEP_SERIAL=1
submits from `repro-sweep` itself. Either way the same runs, the same one-line refusals, no process left."""

from __future__ import annotations

import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from .conftest import echo_args, runs, sweep

MODES = {"child": {}, "serial": {"REPRO_SWEEP_SERIAL": "1"}}


def _submitters() -> list[str]:
    p = subprocess.run(["pgrep", "-af", "repro_mlflow.sweep.submitter"], capture_output=True, text=True)
    return p.stdout.splitlines()


def _no_submitter_left() -> None:
    deadline = time.time() + 10
    while _submitters() and time.time() < deadline:
        time.sleep(0.1)
    assert not _submitters()


def test_the_child_and_this_process_make_the_same_runs(env, tracking):
    seen = {}
    for mode, extra in MODES.items():
        p = sweep(echo_args("hardware=local", "seed=1,2", "repeat=0,1", f"experiment={mode}", "--detach"),
                  dict(env, **extra))
        assert "4 submitted in 1 batch(es)" in p.stderr and "submitted 4 run(s) to local" in p.stderr, p.stderr
        made = runs(experiment=mode)  # (one experiment each: the second would resume the first's runs)
        seen[mode] = sorted((r.data.params.get("seed"), r.data.tags["repro.repeat"], r.data.tags["repro.config_hash"],
                             r.data.tags["repro.target"], r.data.tags["repro.record"] != "") for r in made)
        assert len({r.data.tags["repro.job_id"] for r in made}) == 4
    assert seen["child"] == seen["serial"] and len(seen["child"]) == 4
    _no_submitter_left()


@pytest.mark.parametrize("mode", MODES)
def test_a_refusal_of_the_store_is_one_line_from_either_process(mode, env, tracking):
    client = MlflowClient(tracking)
    client.delete_experiment(client.create_experiment("gone"))
    p = sweep(echo_args("hardware=local", "experiment=gone", "--detach"), dict(env, **MODES[mode]), check=False)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1
    assert lines == ["repro-sweep: error: experiment 'gone' is deleted; restore it or choose another experiment"], p.stderr
    assert not client.search_runs([e.experiment_id for e in client.search_experiments(view_type=3)])
    _no_submitter_left()


def test_bad_input_stops_the_child_before_it_does_anything(env, tracking):
    p = sweep(echo_args("hardware=moon", "--detach"), env, check=False)
    assert p.returncode == 1 and "Could not find 'hardware/moon'" in p.stderr
    _no_submitter_left()


def test_ctrl_c_is_one_line_and_status_130_with_no_trace_from_either_process(env, tracking):
    import os
    import signal

    from tests.conftest import BIN, ROOT

    def interruptible() -> None:  # as from a terminal: a runner in the background (nohup, `&`) ignores SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    p = subprocess.Popen([str(BIN / "repro-sweep"), *echo_args("hardware=local", "seed=1,2", "--detach")], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=interruptible)
    deadline = time.time() + 60
    while not _submitters() and time.time() < deadline:  # repro-sweep is past its start: Ctrl-C is Python's
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)  # as a terminal sends it: to both processes
    _out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.splitlines()[-1] == "repro-sweep: interrupted" and "Traceback" not in err, err
    _no_submitter_left()
