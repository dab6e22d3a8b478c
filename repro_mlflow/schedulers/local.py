"""`repro-local`: runs on this machine, detached from the submitting process.

A batch is one detached driver process (`python -m repro_mlflow.schedulers.local BATCH_DIR`) that
starts the batch's runs, at most `parallel` at a time, each as the one worker entry
`python -m repro_mlflow.runtime <batch record> <i>` in its own process group (the entry point runs in
that group too, and dies with the runtime: `runtime/worker.py`); with more than one at a time each running run gets a CPU slot of its own
(`REPRO_CPU_SLOT=k/m`: `determinism.configure(threads=N)` then gives it CPUs the others do not get). Per run it leaves in the batch directory: `<i>.pid` (pid and start time while it
runs), `<i>.rc` (exit code), `<i>/output.log`; a `<i>.cancel` marker stops a run not yet started.
Job ids are `<host>:<batch dir>:<i>`. A run's `<i>.rc` is written only once every process of its group
is gone (the driver SIGKILLs what is left after the runtime exits), and a run is RUNNING while any is
left: `repro sync` never ends a run whose entry point may still log. The driver gets the batch's
credentials (`Batch.secrets`) in its environment, never in a file; the batch directory is 0700 and its
files 0600 (or the stricter umask).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from collections.abc import Sequence

from ..affinity import SLOT_VAR
from ..runtime import record as R
from ..errors import ReproError
from .protocol import FAILED, FINISHED, KILLED, RUNNING, SCHEDULED, Batch, JobState, SchedulerBase


@dataclass
class LocalConfig:
    """Settings of `--backend repro-local` (all optional)."""

    parallel: int = 1  # runs of one batch at a time
    python: str | None = None  # interpreter for the runtime and `python` in entry points; default: this one
    env: dict | None = None  # extra environment variables for the runs

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise ValueError("parallel must be at least 1")
        env = self.env or {}
        bad = next((k for k, v in env.items() if not isinstance(k, str) or not isinstance(v, str)), None)
        if bad is not None:
            raise ValueError(f"env values must be strings, got {bad}={env[bad]!r}")


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (guards against pid reuse), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def _alive(pid_file: Path) -> int | None:
    try:
        pid_s, start = pid_file.read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_s)
    return pid if _start_time(pid) == start else None


class LocalScheduler(SchedulerBase):
    name: ClassVar[str] = "local"
    config_class: ClassVar[type | None] = LocalConfig
    shared_fs: ClassVar[bool] = True
    runs_here: ClassVar[bool] = True
    passes_secrets: ClassVar[bool] = True  # in the detached driver's environment

    def gives_gpu(self) -> bool:
        d = Path("/proc/driver/nvidia/gpus")  # runs on this machine: whether the driver lists a GPU
        return d.is_dir() and any(d.iterdir())

    def show_job_id(self, job_id: str) -> str:
        return job_id.rsplit(":", 1)[-1]

    def log_path(self, job_id: str, workdir: Path) -> Path | None:
        d, i = self._split(job_id)
        return d / str(i) / "output.log"

    def __init__(self, config: LocalConfig | None = None):
        self.config = config or LocalConfig()

    def preflight(self) -> None:
        """The interpreter of `python` must exist and be executable (else the detached driver dies unseen)."""
        python = self.config.python
        if python and shutil.which(python) is None:
            raise ReproError(f"local backend config: python {python} is not an executable file")

    def submit(self, batch: Batch) -> list[str]:
        python = self.config.python or sys.executable
        batch.layout["python"] = python
        # the auth variables of the config's env travel as the batch's secrets (the driver's environment)
        batch.worker["env"] = {str(k): str(v) for k, v in (self.config.env or {}).items() if k not in batch.secrets}
        self.write_record(batch)  # what the driver and each worker read
        with open(batch.workdir / "driver.log", "ab", opener=_private) as log:
            proc = subprocess.Popen(
                [python, "-m", "repro_mlflow.schedulers.local", str(batch.record)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                cwd=batch.project_dir, env=dict(os.environ, **batch.secrets, PYTHONPATH=_package_root()),
            )
        (batch.workdir / "driver.pid").write_text(f"{proc.pid} {_start_time(proc.pid)}")
        host = socket.gethostname()
        return [f"{host}:{batch.workdir}:{i}" for i in range(len(batch.runs))]

    @staticmethod
    def _split(job_id: str) -> tuple[Path, int]:
        _host, rest = job_id.split(":", 1)
        path, idx = rest.rsplit(":", 1)
        return Path(path), int(idx)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        out: dict[str, JobState] = {}
        for jid in job_ids:
            workdir, i = self._split(jid)
            rc_file = workdir / f"{i}.rc"
            if rc_file.exists():
                rc = int(rc_file.read_text().strip() or 1)
                if rc == 0:
                    out[jid] = JobState(FINISHED)
                elif rc in (-signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGINT):
                    out[jid] = JobState(KILLED, "stopped by signal")
                elif rc < 0:
                    out[jid] = JobState(FAILED, f"the runtime was killed by signal {_signal_name(-rc)}")
                else:
                    out[jid] = JobState(FAILED, f"exit code {rc}")
            elif (workdir / f"{i}.cancel").exists():
                out[jid] = JobState(KILLED, "cancelled before it started")
            elif _alive(workdir / f"{i}.pid") or _group_alive(workdir / f"{i}.pid"):
                out[jid] = JobState(RUNNING)  # the runtime, or what is left of its group (the entry point)
            elif _alive(workdir / "driver.pid"):
                # started and exited but its exit code not yet written by the driver: still RUNNING
                out[jid] = JobState(RUNNING if (workdir / f"{i}.pid").exists() else SCHEDULED)
            else:
                out[jid] = JobState(None, "the local process is gone")
        return out

    def cancel(self, job_ids: Sequence[str]) -> None:
        for jid in job_ids:
            workdir, i = self._split(jid)
            (workdir / f"{i}.cancel").touch()
            pid = _alive(workdir / f"{i}.pid")
            if pid:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def fetch(self, job_id: str, run_id: str, workdir: Path) -> Path | None:
        bundle = self.results_path(job_id, workdir)
        return bundle if bundle.is_dir() else None

    def results_path(self, job_id: str, workdir: Path) -> Path:
        wd, i = self._split(job_id)
        return wd / str(i) / "offline"


def _private(path: str, flags: int) -> int:
    """`open(..., opener=_private)`: a new file is its owner's alone (0600, or the stricter umask)."""
    return os.open(path, flags, 0o600)


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return str(n)


def _group_alive(pid_file: Path) -> bool:
    """Whether any live process is left in the group the runtime of `pid_file` led (its entry point, orphaned)."""
    try:
        return _live_in_group(int(pid_file.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


def _live_in_group(pgid: int) -> bool:
    """Whether process group `pgid` has a live member (zombies nobody reaped do not count)."""
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    if not Path("/proc/self/stat").exists():
        return True  # no /proc to look closer: the group's own answer
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _end_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGKILL what is left of a runtime's process group (an entry point its runtime no longer watches) and
    wait until it is gone, so that the run's exit code is written only once nothing can log any more."""
    end = time.monotonic() + timeout
    while _live_in_group(pgid) and time.monotonic() < end:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            return
        time.sleep(0.05)


def _package_root() -> str:
    root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)


def _drive(record: Path) -> int:
    """Start a batch's runs, `parallel` at a time, each as the one worker entry (the detached driver process)."""
    rec = R.read(record)
    workdir = Path(rec.layout["workdir"])
    parallel = int(rec.config.get("parallel") or 1)
    python = rec.layout.get("python") or sys.executable
    pending = [r.index for r in rec.runs]
    running: dict[int, subprocess.Popen] = {}
    slots: dict[int, int] = {}  # run index -> its CPU slot while it runs
    width = min(parallel, len(pending))  # runs at the same time: the slots to share the CPUs among
    while pending or running:
        for i, p in list(running.items()):
            if p.poll() is not None:
                _end_group(p.pid)
                (workdir / f"{i}.rc").write_text(str(p.returncode))
                del running[i]
                slots.pop(i, None)
        while pending and len(running) < parallel:
            i = pending.pop(0)
            if (workdir / f"{i}.cancel").exists():
                continue
            rundir = workdir / str(i)
            rundir.mkdir(exist_ok=True, mode=0o700)
            env = dict(os.environ)
            if width > 1:  # the entry point's own contract (determinism.configure reads it)
                slots[i] = min(set(range(width)) - set(slots.values()))
                env[SLOT_VAR] = f"{slots[i]}/{width}"
            with open(rundir / "output.log", "ab", opener=_private) as log:
                p = subprocess.Popen(
                    [python, "-m", "repro_mlflow.runtime", str(record), str(i)],
                    cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            (workdir / f"{i}.pid").write_text(f"{p.pid} {_start_time(p.pid)}")
            running[i] = p
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(_drive(Path(sys.argv[1])))
