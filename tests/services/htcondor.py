"""A real one-machine HTCondor pool on 127.0.0.1 for tests and benchmarks (master, collector,
negotiator, schedd, startd), from the HTCondor 25.14 build in `../shared/htcondor` or one on PATH.

The release is unpacked once into a cache keyed by the tarball's hash (`REPRO_HTCONDOR_CACHE`,
default /var/tmp/repro-htcondor: the job user must be able to read it). Each pool lives in a private
temporary directory (config, spool, execute, logs, tokens) with the collector on a free port; every
daemon is stopped, and every job process killed, when the pool stops.

Root can never own a job: clients present an IDTOKEN for an ordinary user (`JOB_USER`, created if
missing) and jobs run as that user. So everything a job touches must be readable by it, its batch
directory writable (tests submit with umask 0 under `pool.home`), and its Python readable: the pool
makes `pool.python`, a virtualenv in the cache whose site-packages are this venv's (when the job user
can read them) or a copy of this venv's mlflow-skinny and what it requires
(`REPRO_HTCONDOR_JOBPY=copy` forces the copy, as where the venv lies under /root).

    with CondorPool.start() as pool:           # outside pytest (benchmarks)
        subprocess.run(["condor_q"], env=pool.env)

In pytest, use the session fixture `condor_pool`, and `condor_env` in a test that talks to it (it exports
the pool's environment and reloads the in-process `htcondor2` configuration).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import pytest

from . import free_port
from .slurm import _kill_processes, _wait

ROOT = Path(__file__).resolve().parents[2]
JOB_USER = "reprojob"
TARBALL_GLOB = "htcondor-*-debian12-x86_64.tar.gz"


def shared_dirs() -> list[Path]:
    """Where `shared/htcondor` may be: $REPRO_HTCONDOR_DIR, ../shared beside the repository (a CI
    clone), or one level further up (a git worktree in a folder of worktrees)."""
    env = os.environ.get("REPRO_HTCONDOR_DIR")
    cands = [Path(env)] if env else []
    return cands + [ROOT.parent / "shared" / "htcondor", ROOT.parent.parent / "shared" / "htcondor"]


def find_tarball() -> Path | None:
    for d in shared_dirs():
        found = sorted(d.glob(TARBALL_GLOB)) if d.is_dir() else []
        if found:
            return found[-1]
    return None


def missing_reason() -> str | None:
    """Why a pool cannot start here, or None."""
    if os.geteuid() != 0:
        return "a test HTCondor pool needs root (the daemons switch to the job user)"
    if find_tarball() is None and shutil.which("condor_master") is None:
        return ("no HTCondor: neither ../shared/htcondor/" + TARBALL_GLOB + " nor condor_master on PATH "
                "(set REPRO_HTCONDOR_DIR to the folder holding the tarball)")
    for tool in ("useradd", "runuser"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is missing (the pool creates the users 'condor' and '{JOB_USER}')"
    return None


def _cache_root() -> Path:
    return Path(os.environ.get("REPRO_HTCONDOR_CACHE", "/var/tmp/repro-htcondor"))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def release_dir() -> Path:
    """The HTCondor release (bin/, sbin/, lib/ ...): the tarball unpacked once into the cache, or the one on PATH."""
    tarball = find_tarball()
    if tarball is None:
        return Path(shutil.which("condor_master")).resolve().parent.parent
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:16]
    cache = _cache_root() / digest
    rel = cache / "release"
    with _locked(cache / ".lock"):
        if not (rel / "sbin" / "condor_master").exists():
            tmp = Path(tempfile.mkdtemp(prefix="release-", dir=cache))
            with tarfile.open(tarball) as tar:
                safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
                for m in tar.getmembers():
                    m.name = m.name.partition("/")[2]  # strip htcondor-25.14.0/
                    if m.islnk():
                        m.linkname = m.linkname.partition("/")[2]
                    if m.name:
                        tar.extract(m, tmp, **safe)
            tmp.rename(rel)
    _open_path(rel)
    return rel


def _open_path(path: Path) -> None:
    """Let every user traverse to `path` and read it (the job user reads the job's Python here)."""
    for p in [path, *path.parents]:
        if p == p.parent:
            break
        mode = p.stat().st_mode
        if mode & 0o005 != 0o005 and p.owner() == "root" and str(p).startswith(str(_cache_root())):
            p.chmod(mode | 0o055)


def _ensure_user(name: str, system: bool) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        args = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name] if system \
            else ["useradd", "--create-home", "--shell", "/bin/bash", name]
        subprocess.run(args, capture_output=True, check=False)  # another session may create it at the same moment
        return pwd.getpwnam(name)


def _as_job_user(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return subprocess.run([runuser, "-u", JOB_USER, "--", *cmd], capture_output=True, text=True, timeout=timeout, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}, cwd="/")


def job_python(copy: bool = False) -> Path:
    """A Python the job user can run, with mlflow: a virtualenv in the cache.

    Made from this Python (or /usr/bin/python3 of the same version) where the job user can run it; its
    packages are this venv's site-packages (one .pth line) when the job user can read them (and not
    `copy`); otherwise mlflow-skinny and what it needs are copied from this venv into it, once.
    """
    import mlflow

    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    site_pkgs = Path(mlflow.__file__).resolve().parents[1]
    key = hashlib.sha256(f"{site_pkgs}|{mlflow.__version__}|{ver}|{copy}".encode()).hexdigest()[:16]
    venv = _cache_root() / "jobpy" / key
    py = venv / "bin" / "python"
    check = f"import sys; assert '%d.%d' % sys.version_info[:2] == '{ver}'"
    with _locked(_cache_root() / "jobpy" / f"{key}.lock"):
        if (venv / ".ready").exists():
            return py
        shutil.rmtree(venv, ignore_errors=True)
        cands = [Path(getattr(sys, "_base_executable", sys.executable)).resolve(), Path("/usr/bin/python3")]
        same = next((p for p in cands if _as_job_user(str(p), "-c", check).returncode == 0), None)
        if same is None:
            raise RuntimeError(f"no Python {ver} the job user {JOB_USER} can run (tried {', '.join(map(str, cands))})")
        subprocess.run([str(same), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        dest = venv / "lib" / f"python{ver}" / "site-packages"
        _open_path(venv)
        if not copy:
            (dest / "repro-test-venv.pth").write_text(f"{site_pkgs}\n")
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
        if _as_job_user(str(py), "-c", "import mlflow").returncode != 0:
            (dest / "repro-test-venv.pth").unlink(missing_ok=True)
            _copy_dists("mlflow-skinny", dest)
            subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
            r = _as_job_user(str(py), "-c", "import mlflow")
            if r.returncode != 0:
                raise RuntimeError(f"the job's Python {py} cannot import mlflow: {r.stderr.strip()[-300:]}")
        (venv / ".ready").write_text("ok\n")
    return py


def _copy_dists(name: str, dest: Path) -> int:
    """Copy the installed distribution `name` and everything it requires (markers evaluated) into `dest`."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo, copied = [name], 0
    while todo:
        key = todo.pop().lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        for f in dist.files or []:
            if f.parts[0] == ".." or "__pycache__" in f.parts:
                continue  # console scripts outside site-packages; caches
            src = Path(dist.locate_file(f))
            if src.is_file():
                (dest / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / f)
                copied += 1
    return copied


class CondorPool:
    """A running one-machine pool: `env` (CONDOR_CONFIG, token, PATH), `home` (a directory the job user
    may write: put batches there), `python` (a Python for jobs), `job_user`, and `run()`."""

    def __init__(self, root: Path, release: Path, cpus: int):
        self.root, self.release, self.cpus = root, release, cpus
        self.config = root / "condor_config"
        self.local = root / "local"
        self.tokens = root / "tokens"
        self.home = root / "home"
        self.collector_port = free_port()
        self.job_user = JOB_USER
        self.python: Path | None = None
        self.master: subprocess.Popen | None = None
        self.uid_domain = ""
        self.hostname = ""
        self.env = dict(os.environ, CONDOR_CONFIG=str(self.config), _CONDOR_SEC_TOKEN_DIRECTORY=str(self.tokens),
                        _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS="IDTOKENS",
                        PATH=f"{release / 'bin'}:{release / 'sbin'}:{os.environ.get('PATH', '/usr/bin:/bin')}")

    def _write_config(self) -> None:
        for d in ("log", "spool", "execute", "lock", "run", "tokens.d", "passwords.d"):
            (self.local / d).mkdir(parents=True, exist_ok=True)
        self.tokens.mkdir(mode=0o700, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        self.home.chmod(0o1777)
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        self.config.write_text(f"""\
RELEASE_DIR = {self.release}
LOCAL_DIR = {self.local}
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
BIN = $(RELEASE_DIR)/bin
SBIN = $(RELEASE_DIR)/sbin
LIB = $(RELEASE_DIR)/lib
LIBEXEC = $(RELEASE_DIR)/libexec
use ROLE: CentralManager
use ROLE: Submit
use ROLE: Execute
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:{self.collector_port}
USE_SHARED_PORT = False
SEC_PASSWORD_DIRECTORY = $(LOCAL_DIR)/passwords.d
SEC_TOKEN_SYSTEM_DIRECTORY = $(LOCAL_DIR)/tokens.d
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, IDTOKENS
SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS, FS
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_ADMINISTRATOR = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
# one partitionable slot; more cores than the machine has, so a batch of short jobs runs side by side
NUM_CPUS = {self.cpus}
MEMORY = {int(mem_mb * 0.6)}
NUM_SLOTS_TYPE_1 = 1
SLOT_TYPE_1 = 100%
SLOT_TYPE_1_PARTITIONABLE = True
# quick cycles: a test pool, not a production one
SCHEDD_INTERVAL = 2
SCHEDD_MIN_INTERVAL = 1
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
NEGOTIATOR_UPDATE_AFTER_CYCLE = True
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
UPDATE_INTERVAL = 2
STARTD_UPDATE_INTERVAL = 2
JOB_START_DELAY = 0
JOB_START_COUNT = 20
RUNBENCHMARKS = 0
START = True
SUSPEND = False
PREEMPT = False
KILL = False
MAXJOBRETIREMENTTIME = 0
# jobs see the real /tmp and /var/tmp: the job's Python lives in the cache there
MOUNT_UNDER_SCRATCH =
""")
        condor = pwd.getpwnam("condor")
        for dirpath, dirs, files in os.walk(self.local):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
                os.chown(name, condor.pw_uid, condor.pw_gid)
        for d in ("passwords.d", "tokens.d"):
            os.chown(self.local / d, 0, 0)
        (self.local / "passwords.d").chmod(0o700)

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run an HTCondor command against this pool (as the job user's token, like the tests' client)."""
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    def _up(self) -> bool:
        if self.master.poll() is not None:
            raise RuntimeError(f"condor_master exited {self.master.returncode}; see {self.local / 'log'}")
        if not (self.local / "passwords.d" / "POOL").exists():
            return False
        st = self.run("condor_status", "-af", "Name", check=False, timeout=20)
        sc = self.run("condor_status", "-schedd", "-af", "Name", check=False, timeout=20)
        return bool(st.stdout.strip()) and bool(sc.stdout.strip())

    def _issue_token(self) -> None:
        os.chown(self.local / "passwords.d" / "POOL", 0, 0)
        self.uid_domain = self.run("condor_config_val", "UID_DOMAIN").stdout.strip()
        token = self.run("condor_token_create", "-identity", f"{self.job_user}@{self.uid_domain}", "-key", "POOL")
        path = self.tokens / f"{self.job_user}.token"
        path.write_text(token.stdout)
        path.chmod(0o600)

    @classmethod
    @contextmanager
    def start(cls, root: Path | None = None, cpus: int | None = None) -> Iterator[CondorPool]:
        """Start the pool and wait until the slot is in the collector and the schedd answers; stop it
        (every daemon and job process) on exit, also on failure. `start_s` says how long it took."""
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        t0 = time.monotonic()
        _ensure_user("condor", system=True)
        _ensure_user(JOB_USER, system=False)
        release = release_dir()
        root = Path(root or tempfile.mkdtemp(prefix="repro-condor-"))
        root.chmod(0o755)
        pool = cls(root, release, cpus or max(8, os.cpu_count() or 1))
        try:
            pool._write_config()
            with open(root / "master.out", "ab") as log:  # the master keeps its own copy of the descriptor
                pool.master = subprocess.Popen([str(release / "sbin" / "condor_master"), "-f"], env=pool.env,
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            _wait(pool._up, 60, "the HTCondor pool did not come up (slot in the collector, schedd answering)",
                  pool.local / "log" / "MasterLog")
            pool._issue_token()
            pool.hostname = pool.run("condor_status", "-af", "Machine").stdout.split()[0]
            _wait(lambda: pool.run("condor_q", "-totals", check=False, timeout=20).returncode == 0, 30,
                  "the schedd did not answer the job user's token", pool.local / "log" / "SchedLog")
            pool.start_s = time.monotonic() - t0
            pool.python = job_python(copy=os.environ.get("REPRO_HTCONDOR_JOBPY") == "copy")
            yield pool
        finally:
            pool.stop()

    def stop(self) -> None:
        """Remove every job, stop the master (it stops the other daemons), kill what is left, remove the directory."""
        if self.master is not None and self.master.poll() is None:
            self.run("condor_rm", "-all", check=False, timeout=20)
            self.run("condor_off", "-master", "-fast", check=False, timeout=20)
            try:
                self.master.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill_leftovers()
        if self.master is not None and self.master.poll() is None:
            self.master.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def _mine(self, proc: Path) -> bool:
        """A live process of this pool: a daemon (CONDOR_CONFIG) or a job (its sandbox under EXECUTE)."""
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        markers = (f"CONDOR_CONFIG={self.config}".encode(), str(self.local / "execute").encode())
        return any(m in e for e in (proc / "environ").read_bytes().split(b"\0") for m in markers)

    def kill_leftovers(self) -> int:
        """SIGKILL every process of this pool still alive; return how many."""
        return _kill_processes(self._mine)

    def processes(self) -> list[int]:
        """Pids of this pool's processes still alive (the 'no daemon left behind' check)."""
        out = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and int(proc.name) != os.getpid() and self._mine(proc):
                    out.append(int(proc.name))
            except OSError:
                continue
        return out


@pytest.fixture(scope="session")
def condor_pool() -> Iterator[CondorPool]:
    """A real one-machine HTCondor pool for the whole session (skipped, with the reason, where none can start)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with CondorPool.start() as pool:
        yield pool
    left = pool.processes()
    assert not left, f"HTCondor processes left behind after the pool stopped: {left}"


@pytest.fixture
def condor_env(condor_pool) -> Iterator[CondorPool]:
    """The pool's environment exported (CONDOR_CONFIG, token, PATH) and `htcondor2` reconfigured for it;
    umask 0 so that the batch directories this test creates are writable by the job user. All undone after."""
    import htcondor2

    keys = ("CONDOR_CONFIG", "_CONDOR_SEC_TOKEN_DIRECTORY", "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS", "PATH")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: condor_pool.env[k] for k in keys})
    htcondor2.reload_config()
    old = os.umask(0)
    try:
        yield condor_pool
    finally:
        os.umask(old)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        htcondor2.reload_config()
