"""A test double of one HTCondor schedd with one execute slot on this machine (no daemons exist here).

It keeps `htcondor2.Schedd`'s interface (`submit`, `query`, `act`) and takes the real
`htcondor2.Submit`: item data is parsed by the real Submit (as `Schedd.submit` builds it), and each
proc's commands are expanded by the real `Submit.expand` ($(run_id), $(ProcId), ...). Running a proc
means what an execute point does: a fresh sandbox holding the transferred input files and the
executable (plus files spooled by an earlier eviction), `.job.ad` / `.machine.ad` and HTCondor's
`_CONDOR_*` variables, a clean environment (no `getenv`), the executable run there, then the output
files copied back to the proc's initialdir. Every step is written to the cluster's event log in
HTCondor's own text format, which the real `htcondor2.JobEventLog` parses.

What a pool would do on its own, the test drives: `run_all()` runs every idle proc in turn;
`faults[proc]` scripts evictions and holds for a proc's next starts. The container named by
`container_image` is stood in for by this machine's Python (`python_dir` first on PATH).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
import classad2  # noqa: E402
import htcondor2  # noqa: E402

IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=schedd-double&noUDP&sock=schedd_1_1>"
# the same real `condor_status -l` capture the fingerprint tests parse
SLOT_AD = Path(__file__).resolve().parents[1] / "fixtures" / "fingerprint" / "htcondor" / "htcondor_condor_status-l_8slot_8.9.12_fedora33.ads"
_SEP = "\x1F"
_DEFAULT = object()  # like Schedd.submit: no itemdata given -> the description's own queue statement


@dataclass
class Fault:
    """What happens to a proc's next start: 'evict' once it runs, or 'hold' (before it runs)."""

    kind: str  # evict | hold
    reason: str = ""
    code: int = 0
    subcode: int = 0


@dataclass
class Job:
    cluster: int
    proc: int
    cmds: dict[str, str]  # expanded submit commands
    status: int = IDLE
    starts: int = 0
    hold_reason: str = ""
    hold_code: int = 0
    hold_subcode: int = 0
    num_holds: int = 0
    spool: Path | None = None  # outputs saved at an eviction (when_to_transfer_output = ON_EXIT_OR_EVICT)
    popen: subprocess.Popen | None = field(default=None, repr=False)
    sandbox: Path | None = None

    @property
    def id(self) -> str:
        return f"{self.cluster}.{self.proc}"

    def ad(self) -> classad2.ClassAd:
        return classad2.ClassAd({
            "ClusterId": self.cluster, "ProcId": self.proc, "JobStatus": self.status, "NumJobStarts": self.starts,
            "NumHolds": self.num_holds, "HoldReason": self.hold_reason, "HoldReasonCode": self.hold_code,
            "HoldReasonSubCode": self.hold_subcode, "Iwd": self.cmds.get("initialdir", ""),
            "UserLog": self.cmds.get("log", ""), "Cmd": self.cmds.get("executable", ""),
            "Args": self.cmds.get("arguments", ""),
        })


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _split_args(value: str) -> list[str]:
    """HTCondor arguments: the new syntax (in double quotes, '' quoting) or the old (plain spaces)."""
    import shlex

    v = value.strip()
    if v.startswith('"') and v.endswith('"'):
        return shlex.split(v[1:-1].replace('""', '"'))
    return v.split()


class ScheddDouble:
    """One schedd and one execute slot in directory `root`; `python_dir` stands in for the container."""

    def __init__(self, root: Path, python_dir: Path | str):
        self.root = Path(root)
        self.python_dir = str(python_dir)
        self.jobs: dict[tuple[int, int], Job] = {}
        self.faults: dict[int, list[Fault]] = {}
        self._clusters = itertools.count(4201)
        self._sandboxes = itertools.count(1)
        (self.root / "execute").mkdir(parents=True, exist_ok=True)
        (self.root / "spool").mkdir(parents=True, exist_ok=True)

    # -- htcondor2.Schedd's interface ---------------------------------------------------------

    def submit(self, description, count: int = 0, spool: bool = False, itemdata=_DEFAULT, queue: str | None = None):
        if not isinstance(description, htcondor2.Submit):
            raise TypeError("description must be an htcondor2.Submit object")
        items = self._items(description, itemdata)
        cluster = next(self._clusters)
        jobs = []
        for proc, item in enumerate(items):
            per = htcondor2.Submit(dict(description.items()))
            for k, v in {**item, "ClusterId": str(cluster), "ProcId": str(proc)}.items():
                per[k] = v
            cmds = {k.lower(): per.expand(k) for k in description.keys()}
            self._check(cmds)
            jobs.append(Job(cluster, proc, cmds))
        for job in jobs:
            self.jobs[(cluster, job.proc)] = job
            self._event(job, "000", f"Job submitted from host: {HOST}")
        return htcondor2.SubmitResult(cluster, 0, len(jobs), classad2.ClassAd({"ClusterId": cluster}), None)

    def query(self, constraint="True", projection=(), callback=None, limit: int = -1, opts=None) -> list:
        expr = constraint if isinstance(constraint, classad2.ExprTree) else classad2.ExprTree(str(constraint))
        out = []
        for job in self.jobs.values():
            if job.status in (REMOVED, COMPLETED):
                continue  # gone to the history
            ad = job.ad()
            if expr.eval(ad) is True:
                if projection:
                    ad = classad2.ClassAd({k: ad[k] for k in projection if k in ad})
                out.append(callback(ad) if callback else ad)
        return out[:limit] if limit >= 0 else out

    def act(self, action, job_spec, reason: str | None = None):
        specs = [job_spec] if isinstance(job_spec, (str, int)) else list(job_spec)
        reason = reason or "Python-initiated action"
        done = 0
        for spec in specs:
            c, _, p = str(spec).partition(".")
            for (jc, jp), job in self.jobs.items():
                if jc != int(c) or (p and jp != int(p)):
                    continue
                if action == htcondor2.JobAction.Remove and job.status in (IDLE, RUNNING, HELD):
                    self._kill(job)
                    job.status = REMOVED
                    self._event(job, "009", "Job was aborted.")  # 25.14: no reason line for JobAction.Remove
                    done += 1
                elif action == htcondor2.JobAction.Release and job.status == HELD:
                    job.status = IDLE
                    self._event(job, "013", "Job was released.", f"\t{reason}")
                    done += 1
                elif action == htcondor2.JobAction.Hold and job.status in (IDLE, RUNNING):
                    self._hold(job, f"{reason} (by user repro)", 1, 0)
                    done += 1
        return classad2.ClassAd({"TotalSuccess": done, "TotalJobAds": done})

    # -- what the pool does -------------------------------------------------------------------

    def idle(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.status == IDLE]

    def run_all(self, limit: int = 50) -> None:
        """Run idle procs, one at a time, until none is idle (evicted procs run again)."""
        for _ in range(limit):
            todo = self.idle()
            if not todo:
                return
            self.run(todo[0])
        raise RuntimeError("the double kept finding idle jobs")

    def run(self, job: Job) -> None:
        """Match, start, and see `job` through: to its end, or to the eviction or hold scripted for it."""
        fault = self.faults.get(job.proc, []).pop(0) if self.faults.get(job.proc) else None
        if fault and fault.kind == "hold":
            if fault.code == 13:  # as 25.14 logs an input transfer failure: the starter's error, an eviction, the hold
                self._event(job, "040", "Started transferring input files", f"\tTransferring to host: {HOST}")
                self._event(job, "021", "Error from starter on slot1_1@schedd-double:",
                            f"\tFailed to transfer files: {fault.reason}", f"\tCode {fault.code} Subcode {fault.subcode}")
                self._event(job, "004", f"Job was evicted. Code {fault.code} Subcode {fault.subcode}", "\t(0) CPU times",
                            *_USAGE_RUN, *_BYTES_RUN, f"\tReason: {fault.reason}")
            self._hold(job, fault.reason, fault.code, fault.subcode)
            return
        self.start(job)
        if fault and fault.kind == "evict":
            self.evict(job)
            return
        self.finish(job)

    def finish(self, job: Job) -> None:
        """Wait for a started job to exit, then transfer its outputs and log its end."""
        self._finish(job, job.popen.wait(timeout=300))

    def evict(self, job: Job) -> None:
        """Evict a started job once its command is under way (as a preempting owner would)."""
        self._wait_started(job)
        self._evict(job)

    def start(self, job: Job) -> None:
        """Match and start an idle job in a fresh sandbox (returns at once)."""
        job.starts += 1
        job.status = RUNNING
        box = self.root / "execute" / f"dir_{next(self._sandboxes)}"
        (box / "tmp").mkdir(parents=True)
        iwd = Path(job.cmds["initialdir"])
        for name in _split_list(job.cmds.get("transfer_input_files", "")):
            src = Path(name) if os.path.isabs(name) else iwd / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, box / src.name)
        if job.spool and job.spool.is_dir():
            shutil.copytree(job.spool, box, dirs_exist_ok=True)
        exe = Path(job.cmds["executable"])
        exe = exe if exe.is_absolute() else iwd / exe
        shutil.copy2(exe, box / exe.name)
        (box / exe.name).chmod(0o755)
        (box / ".job.ad").write_text(job.ad().printOld())
        (box / ".machine.ad").write_text(SLOT_AD.read_text().split("\n\n")[0] + "\n")
        env = {
            "PATH": f"{self.python_dir}:/usr/local/bin:/usr/bin:/bin", "TMPDIR": str(box / "tmp"),
            "_CONDOR_SCRATCH_DIR": str(box), "_CONDOR_JOB_AD": str(box / ".job.ad"),
            "_CONDOR_MACHINE_AD": str(box / ".machine.ad"), "_CONDOR_JOB_IWD": str(box),
            "BATCH_SYSTEM": "HTCondor", "LANG": "C.UTF-8",
        }
        for pair in _split_args(job.cmds.get("environment", "")):
            k, _, v = pair.partition("=")
            env[k] = v
        job.sandbox = box
        self._event(job, "040", "Started transferring input files", f"\tTransferring to host: {HOST}")
        self._event(job, "040", "Finished transferring input files")
        self._event(job, "001", f"Job executing on host: {HOST.replace('schedd_1_1', 'startd_1_1')}",
                    "\tSlotName: slot1_1@schedd-double", f'\tCondorScratchDir = "{box}"', "\tCpus = 1",
                    "\tDisk = 2048", "\tGPUs = 0", "\tMemory = 2048")
        with open(box / "_condor_stdout", "wb") as out, open(box / "_condor_stderr", "wb") as err:
            job.popen = subprocess.Popen([str(box / exe.name), *_split_args(job.cmds.get("arguments", ""))],
                                         cwd=box, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True)

    def _wait_started(self, job: Job, timeout: float = 60) -> None:
        """Until the job's command is under way (the wrapper says so on stderr) or the job ends."""
        end = time.time() + timeout
        while time.time() < end and job.popen.poll() is None:
            if b"repro job: run" in (job.sandbox / "_condor_stderr").read_bytes():
                time.sleep(1.0)
                return
            time.sleep(0.05)

    def _kill(self, job: Job) -> int | None:
        if job.popen is None or job.popen.poll() is not None:
            return job.popen.returncode if job.popen else None
        os.killpg(job.popen.pid, signal.SIGTERM)  # HTCondor's soft kill, then SIGKILL
        try:
            return job.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(job.popen.pid, signal.SIGKILL)
            return job.popen.wait()

    def _evict(self, job: Job) -> None:
        self._kill(job)
        job.spool = self.root / "spool" / job.id
        shutil.rmtree(job.spool, ignore_errors=True)
        job.spool.mkdir(parents=True)
        if job.cmds.get("when_to_transfer_output", "").upper() == "ON_EXIT_OR_EVICT":
            self._transfer_out(job, job.spool)
        job.status = IDLE
        self._event(job, "004", "Job was evicted. Code 1022 Subcode 0", "\t(0) CPU times", *_USAGE_RUN, *_BYTES_RUN,
                    "\tReason: Job vacated by schedd")
        self._cleanup(job)

    def _hold(self, job: Job, reason: str, code: int, subcode: int) -> None:
        self._kill(job)
        job.status, job.hold_reason, job.hold_code, job.hold_subcode = HELD, reason, code, subcode
        job.num_holds += 1
        self._event(job, "012", "Job was held.", f"\t{reason}", f"\tCode {code} Subcode {subcode}")
        self._cleanup(job)

    def _finish(self, job: Job, rc: int) -> None:
        iwd = Path(job.cmds["initialdir"])
        missing = self._transfer_out(job, iwd)
        for key, name in (("output", "_condor_stdout"), ("error", "_condor_stderr")):
            if job.cmds.get(key):
                dest = Path(job.cmds[key])
                shutil.copy2(job.sandbox / name, dest if dest.is_absolute() else iwd / dest)
        if missing:
            self._hold(job, f"Transfer output files failure at execution point slot1_1@schedd-double while sending "
                            f"files to access point schedd-double. Details: reading from file {job.sandbox / missing}: "
                            f"(errno 2) No such file or directory", 12, 2)
            return
        retries = int(job.cmds.get("max_retries") or 0)
        if rc != 0 and job.starts <= retries:  # max_retries: HTCondor requeues a failed proc
            job.status = IDLE
            self._event(job, "004", "Job was evicted.", "\t(0) Job terminated and was requeued", *_USAGE_RUN,
                        *_BYTES_RUN, f"\t(1) Normal termination (return value {rc})",
                        "\tThe job attribute OnExitRemove expression 'NumJobCompletions > JobMaxRetries || ExitCode =?= 0' "
                        "evaluated to FALSE")
            self._cleanup(job)
            return
        job.status = COMPLETED
        if rc >= 0:
            term = [f"\t(1) Normal termination (return value {rc})"]
        else:
            term = [f"\t(0) Abnormal termination (signal {-rc})", "\t(0) No core file"]
        stamp = datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        tail = [f"\tJob terminated of its own accord at {stamp} with exit-code {rc}."] if rc >= 0 else []
        self._event(job, "005", "Job terminated.", *term, *_USAGE_RUN, *_USAGE_TOTAL, *_BYTES_RUN, *_BYTES_TOTAL,
                    *_RESOURCES, "", *tail)
        self._cleanup(job)

    def _transfer_out(self, job: Job, dest: Path) -> str | None:
        """Copy transfer_output_files from the sandbox to `dest`; the first missing name, if any."""
        self._event(job, "040", "Started transferring output files")
        self._event(job, "040", "Finished transferring output files")
        for name in _split_list(job.cmds.get("transfer_output_files", "")):
            src = job.sandbox / name
            if not src.exists():
                return name
            target = dest / src.name
            if target.is_dir():
                shutil.rmtree(target)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
        return None

    def _cleanup(self, job: Job) -> None:
        if job.sandbox is not None:
            shutil.rmtree(job.sandbox, ignore_errors=True)
        job.sandbox, job.popen = None, None

    def _check(self, cmds: dict[str, str]) -> None:
        """What condor_submit refuses: no executable, a missing input file or initialdir."""
        iwd = Path(cmds.get("initialdir") or ".")
        if not cmds.get("executable"):
            raise htcondor2.HTCondorException("No 'executable' parameter was provided")
        for name in [cmds["executable"], *_split_list(cmds.get("transfer_input_files", ""))]:
            p = Path(name) if os.path.isabs(name) else iwd / name
            if not p.exists():
                raise htcondor2.HTCondorException(f"Can't open \"{p}\" with flags 00 (No such file or directory)")
        if not iwd.is_dir():
            raise htcondor2.HTCondorException(f"No such directory: {iwd}")

    def _items(self, description, itemdata) -> list[dict[str, str]]:
        """Item data as `Schedd.submit` passes it on: inline `QUEUE k1,k2 FROM (...)`, parsed by the real Submit."""
        if itemdata is _DEFAULT:
            parsed = description.itemdata()
            return list(parsed) if parsed is not None else [{}]
        if itemdata is None:
            return [{}]
        rows = list(itemdata)
        if not rows:
            return []
        keys = list(rows[0].keys())
        text = "".join(f"{k} = {v}\n" for k, v in description.items())
        text += f"QUEUE {','.join(keys)} FROM (\n" + "".join(_SEP.join(str(r[k]) for k in keys) + "\n" for r in rows) + ")\n"
        return list(htcondor2.Submit(text).itemdata())

    def _event(self, job: Job, code: str, headline: str, *body: str) -> None:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        lines = [f"{code} ({job.cluster:03d}.{job.proc:03d}.000) {stamp} {headline}", *body, "..."]
        with open(job.cmds["log"], "a") as f:
            f.write("\n".join(lines) + "\n")


_USAGE_RUN = ("\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Run Remote Usage", "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage")
_USAGE_TOTAL = ("\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Total Remote Usage", "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage")
_BYTES_RUN = ("\t0  -  Run Bytes Sent By Job", "\t0  -  Run Bytes Received By Job")
_BYTES_TOTAL = ("\t0  -  Total Bytes Sent By Job", "\t0  -  Total Bytes Received By Job")
_RESOURCES = (
    "\tPartitionable Resources :    Usage  Request Allocated ",
    "\t   Cpus                 :        0        1         1 ",
    "\t   Disk (KB)            :       83        1      2048 ",
    "\t   GPUs                 :                           0 ",
    "\t   Memory (MB)          :        0     2048      2048 ",
)
