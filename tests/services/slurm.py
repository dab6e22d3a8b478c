"""A real one-node Slurm cluster on 127.0.0.1 for tests and benchmarks (munge, slurmctld, slurmd).

Everything lives in a private temporary directory: munge key and socket, slurm.conf, state, spool,
pid and log files; the ports are free ones, so several clusters can run side by side on one machine.
`SLURM_CONF` points the Slurm commands at it. Needs root and Debian's `slurm-wlm` + `munge`
(`scripts/setup.sh --system`).

    with SlurmCluster.start() as cluster:      # outside pytest (benchmarks)
        subprocess.run(["sinfo"], env=cluster.env)

In pytest, use the session fixture `slurm_cluster` (it also exports SLURM_CONF while it lives).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import pytest

MAX_ARRAY_SIZE = 2001


def missing_reason() -> str | None:
    """Why a cluster cannot start here, or None."""
    for tool in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (scripts/setup.sh --system installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "a test Slurm cluster needs root (slurmd runs jobs as their users)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (install the munge package)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"


class SlurmCluster:
    """A running one-node cluster: `conf`, `env` (with SLURM_CONF), `node`, `partition`, and controls."""

    def __init__(self, root: Path, partition: str = "debug", max_array_size: int = MAX_ARRAY_SIZE,
                 max_job_count: int = 20000):
        self.root = root
        self.max_array_size = max_array_size
        self.max_job_count = max_job_count
        self.node = socket.gethostname().split(".")[0]
        self.partition = partition
        self.conf = root / "etc" / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.sock"
        self.ctld_port, self.slurmd_port = _free_port(), _free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    # ---- set-up -------------------------------------------------------------------------------
    def _write_files(self) -> None:
        r = self.root
        os.chmod(r, 0o755)  # munged runs as `munge` and must reach its directory
        for d in ("etc", "state", "spool", "log", "run", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        munge = pwd.getpwnam("munge")
        mdir = r / "munge"
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        for p in (mdir, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        os.chmod(mdir, 0o755)
        os.chmod(key, 0o400)
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        self.conf.write_text(f"""\
ClusterName=repro-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=10
SlurmctldTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
MaxArraySize={self.max_array_size}
MaxJobCount={self.max_job_count}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}
SlurmdPidFile={r / 'run' / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={int(mem_mb * 0.8)} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _start_munged(self) -> None:
        m = self.root / "munge"
        self.procs["munged"] = subprocess.Popen(
            ["runuser", "-u", "munge", "--", _sbin("munged"), "--foreground", f"--socket={self.munge_socket}",
             f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}",
             f"--seed-file={m / 'munged.seed'}", "--num-threads=2"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(m / "munged.stderr", "ab"),
            start_new_session=True)
        _wait(lambda: self.munge_socket.exists(), 10, "munged did not create its socket", self.root / "munge" / "munged.log")

    def _start_daemon(self, name: str) -> None:
        log = open(self.root / "log" / f"{name}.stderr", "ab")
        self.procs[name] = subprocess.Popen(
            [_sbin(name), "-D", "-f", str(self.conf)] + (["-i"] if name == "slurmctld" else []),
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def start_slurmd(self) -> None:
        """(Re)start slurmd and wait until the node takes jobs."""
        self._start_daemon("slurmd")
        self.wait_idle()

    def stop_slurmd(self, hard: bool = True) -> None:
        """Stop slurmd (SIGKILL when `hard`, as if the node died); running job steps are left alone."""
        p = self.procs.pop("slurmd", None)
        if p is not None:
            p.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            p.wait(10)

    def crash_node(self) -> int:
        """Simulate the node dying: SIGKILL slurmd, its job step daemons and every job process of this
        cluster. Returns how many processes were killed. `start_slurmd()` brings the node back."""
        self.stop_slurmd(hard=True)
        return _kill_stepds(self.root) + _kill_job_processes(self.conf)

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False)
        return out.stdout.strip()

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until the node is idle (or mixed/allocated: up and taking jobs)."""
        def up() -> bool:
            st = self.node_state()
            if st.rstrip("*") in ("down", "drained", "draining", "fail"):
                self.run("scontrol", "update", f"NodeName={self.node}", "State=RESUME", check=False)
            return st in ("idle", "mixed", "allocated")
        _wait(up, timeout, "the Slurm node did not come up", self.root / "log" / "slurmd.log")

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm command against this cluster."""
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check, timeout=60)

    # ---- life cycle ---------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def start(cls, root: Path | None = None, max_array_size: int = MAX_ARRAY_SIZE,
              max_job_count: int = 20000) -> Iterator[SlurmCluster]:
        """Start munged, slurmctld and slurmd; stop them (and cancel every job) on exit, also on failure."""
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        root = Path(root or tempfile.mkdtemp(prefix="repro-slurm-"))
        cluster = cls(root, max_array_size=max_array_size, max_job_count=max_job_count)
        try:
            cluster._write_files()
            cluster._start_munged()
            cluster._start_daemon("slurmctld")
            _wait(lambda: cluster.run("scontrol", "ping", check=False).returncode == 0, 30,
                  "slurmctld did not answer", root / "log" / "slurmctld.log")
            cluster.start_slurmd()
            yield cluster
        finally:
            cluster.stop()

    def stop(self) -> None:
        """Cancel every job, stop the daemons, kill what jobs are left, remove the directory."""
        if "slurmctld" in self.procs:
            self.run("scancel", "--full", "-u", "root", check=False)
            time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None:
                continue
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        _kill_stepds(self.root)
        _kill_job_processes(self.conf)
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_processes(match) -> int:
    """SIGKILL every process (not this one) for which `match(proc_dir)` is true; return how many."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            hit = match(proc)
        except OSError:  # gone, or not ours to read
            continue
        if hit:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def _kill_stepds(root: Path) -> int:
    """Kill slurmstepd processes (and their jobs) of this cluster, found by its directory; return how many."""
    spool = str(root / "spool").encode()

    def match(proc: Path) -> bool:
        if (proc / "comm").read_text().strip() != "slurmstepd":
            return False
        env, cmd = (proc / "environ").read_bytes(), (proc / "cmdline").read_bytes()
        return spool in env or spool in cmd or str(root).encode() in env

    return _kill_processes(match)


def _kill_job_processes(conf: Path) -> int:
    """SIGKILL every process of a job of the cluster configured by `conf`; return how many."""
    marker = f"SLURM_CONF={conf}".encode()

    def match(proc: Path) -> bool:
        env = (proc / "environ").read_bytes().split(b"\0")
        return marker in env and any(e.startswith(b"SLURM_JOB_ID=") for e in env)

    return _kill_processes(match)


def _wait(cond, timeout: float, what: str, log: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} within {timeout:.0f} s{tail}")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real one-node Slurm cluster for the whole session; SLURM_CONF is exported while it lives."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with SlurmCluster.start() as cluster:
        old = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old
