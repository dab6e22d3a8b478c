"""Resume: killing a waiting sweep loses nothing; the same command again submits only what is missing."""

from __future__ import annotations

import re
import signal
import subprocess
import time

from mlflow.tracking import MlflowClient

from tests.conftest import BIN, ROOT

from .conftest import echo_args, repro, runs, sweep, wait_terminal

SWEEP = "tags.`repro.sweep` = 'resume'"


def test_kill_then_status_sync_and_rerun_submit_only_what_is_missing(env, tracking, tmp_path):
    release = tmp_path / "release"  # the runs sleep until this file exists (tests/sweep/project/job.py)
    env = dict(env, ECHO_RELEASE=str(release))
    MlflowClient().search_experiments()  # create the store first: two processes migrating one sqlite file collide
    args = echo_args("seed=1,2", "sweep=resume", "example.params.sleep=60", "poll_interval=0.5",
                     "hardware.backend_config.parallel=2")
    proc = subprocess.Popen([str(BIN / "repro-sweep"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # wait until the sweep has submitted and is watching
            found = runs(SWEEP) if MlflowClient().get_experiment_by_name("repro") else []
            if len(found) == 2 and all(r.data.tags.get("repro.job_id") for r in found):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the sweep never submitted its runs")
        assert proc.poll() is None, "the sweep should still be waiting"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    # The same command again while the runs go on duplicates nothing; `repro status` sees them.
    again = sweep([*args, "--detach"], env)
    m = re.search(r"0 submitted in 0 batch\(es\), (\d) already FINISHED, (\d) still running from before", again.stderr)
    assert m and int(m.group(1)) + int(m.group(2)) == 2 and int(m.group(2)) >= 1, again.stderr
    st = repro(["status", "--sweep", "resume"], env)
    assert st.returncode == 0 and "2 repro run(s)" in st.stdout
    assert len(runs(SWEEP)) == 2
    release.touch()  # from here on the runs (and every later one) finish at once

    # `repro sync` takes over and the runs end FINISHED.
    done = wait_terminal(SWEEP, 2, env)
    assert sorted(r.info.status for r in done) == ["FINISHED", "FINISHED"]

    # One run fails later (its job crashed); a bigger sweep resubmits it and adds only the new one.
    MlflowClient().set_terminated(done[0].info.run_id, "FAILED")
    bigger = sweep(echo_args("seed=1,2,3", "sweep=resume", "example.params.sleep=60", "hardware.backend_config.parallel=2", "--detach"), env)
    assert "2 submitted in 1 batch(es), 1 already FINISHED" in bigger.stderr
    assert "1 resubmitted after failing" in bigger.stderr
    final = wait_terminal(SWEEP, 4, env)
    assert len(final) == 4
    by_key = {}
    for r in final:
        by_key.setdefault(r.data.tags["repro.config_hash"], []).append(r)
    assert len(by_key) == 3
    retried = by_key[done[0].data.tags["repro.config_hash"]]
    assert sorted((r.info.status, r.data.tags["repro.attempt"]) for r in retried) == [("FAILED", "1"), ("FINISHED", "2")]

    # Everything FINISHED: the same command submits nothing; force re-runs all three.
    nothing = sweep(echo_args("seed=1,2,3", "sweep=resume", "example.params.sleep=60", "hardware.backend_config.parallel=2", "--detach"), env)
    assert "0 submitted" in nothing.stderr and "3 already FINISHED" in nothing.stderr
    forced = sweep(echo_args("seed=1,2,3", "sweep=resume", "example.params.sleep=60", "hardware.backend_config.parallel=3", "--detach", "--force"), env)
    assert "3 submitted" in forced.stderr
    wait_terminal(SWEEP, 7, env)


def test_a_run_created_but_never_submitted_is_resubmitted(env, tracking):
    # The submitting process died between creating a run and handing it to the scheduler, long ago.
    args = echo_args("seed=5", "sweep=lost")
    dry = sweep([*args, "--dry-run"], env)
    config_hash = re.search(r"^\s+([0-9a-f]{12}) r0 echo", dry.stderr, re.M).group(1)
    client = MlflowClient()
    exp = client.create_experiment("repro")
    lost = client.create_run(exp, start_time=int((time.time() - 3600) * 1000), tags={
        "repro.sweep": "lost", "repro.config_hash": config_hash, "repro.repeat": "0", "repro.target": "local",
        "repro.backend": "local"})
    client.update_run(lost.info.run_id, "SCHEDULED")
    p = sweep([*args, "--detach"], env)
    assert "1 submitted in 1 batch(es)" in p.stderr and "1 resubmitted after failing" in p.stderr
    assert client.get_run(lost.info.run_id).info.status == "KILLED"
    assert "never submitted" in client.get_run(lost.info.run_id).data.tags["repro.status_reason"]
    wait_terminal("tags.`repro.sweep` = 'lost' and tags.`repro.attempt` = '2'", 1, env)
