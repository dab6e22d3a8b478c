"""A local store that cannot be written (issue 28 item 5): said once in output.log, the run ends with a true state.

Real filesystems: a size-limited tmpfs that the entry point fills (a full disk), a tmpfs mounted read-only
(a read-only filesystem). Root ignores file modes, so a mount is what refuses here; skipped where this
process cannot mount."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

# logs 5 steps, fills the filesystem of its local store, then logs 45 more steps, a param and a tag
ENTRY = textwrap.dedent("""
    import os, time, mlflow
    mlflow.start_run()
    for i in range(5):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    with open(os.path.join(os.environ["FILL"], "filler"), "wb") as f:
        try:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        except OSError as e:
            print("filled:", e.strerror, flush=True)
    started = time.monotonic()
    for i in range(5, 50):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    mlflow.log_param("p", 1)
    mlflow.set_tag("t", "v")
    print(f"trained; the last 47 calls took {time.monotonic() - started:.3f} s", flush=True)
""")


@pytest.fixture
def mount(tmp_path):
    made: list[Path] = []

    def mount(opts: str) -> Path:
        d = tmp_path / f"mnt{len(made)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        made.append(d)
        return d

    yield mount
    for d in made:
        subprocess.run(["umount", "-l", str(d)], check=False)


def _run(tracking, tmp_path, offline: Path, fill: Path) -> tuple[str, subprocess.CompletedProcess]:
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("store")).info.run_id
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    log = tmp_path / "output.log"
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking, REPRO_OFFLINE_DIR=str(offline), REPRO_MIRROR_GRACE="5",
               FILL=str(fill), REPRO_HOME=str(tmp_path / "repro"))
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--log-file",
                               str(log), "--", sys.executable, str(script)], env=env, stdout=out,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
    return run_id, proc


def test_a_full_local_store_is_said_once_and_the_run_is_not_finished(tracking, tmp_path, mount):
    disk = mount("size=3m")
    run_id, proc = _run(tracking, tmp_path, disk / "offline", disk)
    text = (tmp_path / "output.log").read_text()
    said = [line for line in text.splitlines() if "cannot be written" in line]
    assert said == [f"repro runtime: the local store {disk / 'offline'} cannot be written (database or disk is full); "
                    "what the run logs from now on is not kept (said once)"], text
    assert "Traceback" not in text and "trained" in text, text  # the project went on, no traceback per call
    took = float(text.split("the last 47 calls took ")[1].split()[0])
    assert took < 5, text  # refused once, then not tried again: no retry per call (a generous bound, under load)
    assert proc.returncode != 0
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"  # the command exited 0, but not all it logged was kept
    reason = run.data.tags["repro.status_reason"]
    assert reason.startswith(f"local store {disk / 'offline'} could not be written (database or disk is full): ")
    assert "logging call(s) of the run not kept" in reason
    assert int(reason.split(": ")[-1].split()[0]) >= 47  # 45 steps, the param, the tag (and the run's end)
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert steps == [0, 1, 2, 3, 4]  # what was kept is delivered, once


def test_a_read_only_filesystem_is_one_line_and_the_run_failed(tracking, tmp_path, mount):
    ro = mount("ro,size=1m")
    run_id, proc = _run(tracking, tmp_path, ro / "offline", tmp_path)
    text = (tmp_path / "output.log").read_text()
    assert text.splitlines() == [f"repro runtime: local store {ro / 'offline'} could not be made ([Errno 30] "
                                 "Read-only file system); the command was not run"], text
    assert proc.returncode == 1
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["repro.status_reason"] == (f"local store {ro / 'offline'} could not be made ([Errno 30] "
                                                    "Read-only file system); the command was not run")
    assert not (ro / "offline").exists() and not (tmp_path / "filler").exists()  # nothing made, nothing run
