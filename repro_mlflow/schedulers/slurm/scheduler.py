"""`repro-slurm`: a batch of N runs is ONE `sbatch --array=0-(N-1)` over its batch record (several when N
exceeds the cluster's `MaxArraySize`: arrays of task ids 0-(M-1) over consecutive runs, recorded in
`arrays.json` and in the batch record's `parts`; with `max_running`, each array waits for the one
before it (`--dependency=afterany:`), so at most `max_running` runs of the batch run at once overall).

Both limits come from one `scontrol show config`. `MaxJobCount` counts every array task (pending ones
too) of every user, and an sbatch over it does not fail but sleeps and retries for ever: a batch that
does not fit beside the jobs slurmctld already holds is refused in one line before any run is created
(`check_batch_size`).

Submit side, per batch (the job directory: `jobs_dir/<batch>` or the batch's workdir under
REPRO_HOME; it must be on a filesystem the nodes share):

    batch.json      the batch record (runtime/record.py): the runs, common env, tags taken from SLURM_* on the node
    job.sh          the array job script: env, setup lines, then the one worker entry
                    `python -m repro_mlflow.runtime batch.json $SLURM_ARRAY_TASK_ID`
    project/        the project, packed once
    out/            Slurm's output file of each job, <array job id>_<task>.log (sbatch --output): made as
                    each job starts, not by the submit side (10,000 directories take seconds to create)
    <i>/            per run, made by job.sh: output.log (a hard link to the job's file in out/),
                    status.json (runtime), rc (job script),
                    offline/ (the offline store when the tracking server was out of reach)

Job ids are `<array job id>_<task>`; run index = the array's offset + task (`arrays.json`). `poll` is one `squeue` call for every job of every array
(plus one `sacct` call for the jobs squeue has forgotten, where accounting exists); a job neither
knows is decided by its exit files (`exit_state`) or else counts as vanished.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar
from collections.abc import Sequence

from ... import tags as T
from ...errors import ReproError
from ..protocol import FAILED, FINISHED, KILLED, Batch, JobState, SchedulerBase
from .config import SlurmConfig
from ..staging import stage_project
from .states import SQUEUE_FORMAT, parse_sacct, parse_squeue

POINTER = "slurm-jobdir"  # file in the batch workdir naming the job directory when jobs_dir is set
OUT = "out"  # in the job directory: Slurm's output file of each job (sbatch --output)
ARRAYS = "arrays.json"  # in the job directory: [{"array_id", "offset", "count"}], one per sbatch
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default, when `scontrol show config` does not say
DEFAULT_MAX_JOB_COUNT = 10000  # likewise

# Always passed from the submitting environment to the job (`sbatch --export=`), plus `env_passthrough`.
BASE_EXPORT = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "SLURM_CONF",
               "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
               "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
               "REPRO_OFFLINE", "REPRO_HEALTH_TIMEOUT", "REPRO_MIRROR_GRACE", "REPRO_MIRROR_INTERVAL",
               "REPRO_MIRROR_TIMEOUT", "REPRO_MIRROR_BACKOFF_MAX")

# Tags the runtime writes from the job's environment on the node, beside the fingerprint's own
# repro.slurm.{cluster,partition,node,job_id,array_task_id} (fingerprint/site.py), which they do not repeat.
SLURM_TAGS = {
    T.SLURM_PREFIX + "array_id": "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}",  # equals repro.job_id
    T.SLURM_PREFIX + "cpus": "${SLURM_CPUS_ON_NODE}",
    T.SLURM_PREFIX + "account": "${SLURM_JOB_ACCOUNT}",
    T.SLURM_PREFIX + "qos": "${SLURM_JOB_QOS}",
    T.SLURM_PREFIX + "restart_count": "${SLURM_RESTART_COUNT}",
}


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[3])


def _run(cmd: list[str], what: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise ReproError(f"{cmd[0]} not found on PATH: {what} needs the Slurm client commands") from None
    except subprocess.TimeoutExpired:
        raise ReproError(f"{cmd[0]} did not answer within {timeout:.0f} s") from None


def _first_line(p: subprocess.CompletedProcess) -> str:
    text = (p.stderr or p.stdout or "").strip()
    return text.splitlines()[-1] if text else f"exit code {p.returncode}"


class SlurmScheduler(SchedulerBase):
    config_class: ClassVar[type | None] = SlurmConfig
    shared_fs: ClassVar[bool] = True  # jobs see the submit side's files (a cluster filesystem)
    passes_secrets: ClassVar[bool] = True  # sbatch --export of the submitting environment
    name: ClassVar[str] = "slurm"

    def __init__(self, config: SlurmConfig | None = None):
        self.config = config or SlurmConfig()
        self._checked = False
        self._sacct: bool | None = None  # None: not tried yet
        self._limits: dict[str, int] | None = None  # MaxArraySize, MaxJobCount
        self._offsets: dict[str, dict[str, int]] = {}  # job directory -> array id -> offset

    # ---- before any run exists ---------------------------------------------------------------
    def preflight(self) -> None:
        """Check what can be checked before runs are created: sbatch on PATH, the partition exists."""
        if self._checked:
            return
        if shutil.which("sbatch") is None:
            raise ReproError("sbatch not found on PATH: repro-slurm submits from a machine with the Slurm client commands")
        if self.config.partition:
            p = _run(["sinfo", "-h", "-o", "%R"], "checking the partition", 60)
            if p.returncode != 0:
                raise ReproError(f"cannot query Slurm partitions (sinfo): {_first_line(p)}")
            known = sorted({line.strip() for line in p.stdout.splitlines() if line.strip()})
            if self.config.partition not in known:
                raise ReproError(f"unknown Slurm partition '{self.config.partition}' (known: {', '.join(known) or 'none'})")
        self._checked = True

    # ---- submit ------------------------------------------------------------------------------
    def submit(self, batch: Batch) -> list[str]:
        self.preflight()
        jobdir = self._make_jobdir(batch)
        n = len(batch.runs)
        (jobdir / OUT).mkdir(exist_ok=True, mode=0o700)  # one directory, not one per run: job.sh makes <i>/
        stage_project(batch.project_dir, jobdir / "project", exclude=jobdir)
        python = self.config.python or sys.executable
        batch.layout.update(job_dirs=str(jobdir), project=str(jobdir / "project"), python=python)
        batch.worker.update(env={k: str(v) for k, v in (self.config.env or {}).items() if k not in batch.secrets},
                            extra_tags=SLURM_TAGS,
                            requeue=bool(self.config.requeue))  # the runtime tells a requeue's SIGTERM from a kill
        batch.record_path = jobdir / "batch.json"  # where the nodes see it (jobs_dir is on the shared filesystem)
        record = self.write_record(batch)
        script = jobdir / "job.sh"
        script.write_text(self.job_script(jobdir, python, record))
        script.chmod(0o755)
        size = self.max_array_size()
        arrays: list[dict] = []
        job_ids: list[str] = []
        for offset in range(0, n, size):
            count = min(size, n - offset)
            after = arrays[-1]["array_id"] if arrays and self.config.max_running else None
            try:
                array_id = self._sbatch(jobdir, script, offset, count, after, len(arrays), batch.secrets)
            except ReproError:
                if arrays:  # the parts already queued would run runs the caller is about to delete
                    self.cancel([a["array_id"] for a in arrays])
                raise
            arrays.append({"array_id": array_id, "offset": offset, "count": count})
            job_ids += [f"{array_id}_{t}" for t in range(count)]
        (jobdir / ARRAYS).write_text(json.dumps(arrays) + "\n")
        batch.parts = [{"id": a["array_id"], "first": a["offset"], "count": a["count"],
                        "after": arrays[i - 1]["array_id"] if i and self.config.max_running else None}
                       for i, a in enumerate(arrays)]
        (jobdir / "array_job_id").write_text("\n".join(a["array_id"] for a in arrays) + "\n")
        return job_ids

    def _sbatch(self, jobdir: Path, script: Path, offset: int, count: int, after: str | None, part: int,
                secrets: dict[str, str] | None = None) -> str:
        """One `sbatch --array=0-(count-1)` over runs offset .. offset+count-1; its array job id. The batch's
        credentials reach the jobs as sbatch's environment (`--export` names them), never in a file."""
        array = f"0-{count - 1}" + (f"%{self.config.max_running}" if self.config.max_running else "")
        export = ",".join(dict.fromkeys([*BASE_EXPORT, *(self.config.env_passthrough or []), *(secrets or {})]))
        # Slurm opens this file before job.sh runs; job.sh links it as <offset+task>/output.log
        output = f"{jobdir}/{OUT}/%A_%a.log"
        cmd = ["sbatch", "--parsable", f"--array={array}", f"--job-name={self.config.job_name}",
               f"--output={output}", f"--chdir={jobdir}", f"--export={export}",
               *([f"--dependency=afterany:{after}"] if after else []),
               *self.config.sbatch_options(), str(script), *([str(offset)] if offset else [])]
        name = "sbatch.cmd" if part == 0 else f"sbatch.{part}.cmd"
        (jobdir / name).write_text(shlex.join(cmd) + "\n")
        p = _run(cmd, "repro-slurm", env=dict(os.environ, **secrets) if secrets else None)
        if p.returncode != 0:
            raise ReproError(f"sbatch refused the batch: {_first_line(p)}")
        array_id = p.stdout.strip().splitlines()[-1].split(";")[0]
        if not array_id.isdigit():
            raise ReproError(f"sbatch printed no job id: {p.stdout.strip()!r}")
        return array_id

    def limits(self) -> dict[str, int]:
        """The cluster's `MaxArraySize` (task ids run 0 .. MaxArraySize-1) and `MaxJobCount`, read once from `scontrol`."""
        if self._limits is None:
            self._limits = {"MaxArraySize": DEFAULT_MAX_ARRAY_SIZE, "MaxJobCount": DEFAULT_MAX_JOB_COUNT}
            p = _run(["scontrol", "show", "config"], "reading the cluster's limits", 60)
            for line in p.stdout.splitlines() if p.returncode == 0 else []:
                key, _, value = line.partition("=")
                if key.strip() in self._limits and value.strip().isdigit():
                    self._limits[key.strip()] = max(1, int(value.strip()))
        return self._limits

    def max_array_size(self) -> int:
        """The cluster's `MaxArraySize`: the most runs one array (one part of a batch) holds."""
        return self.limits()["MaxArraySize"]

    def check_batch_size(self, n: int) -> None:
        """Refuse (one line) a batch of `n` runs that cannot be queued beside the jobs slurmctld holds now:
        every array task counts towards `MaxJobCount`, and sbatch over it would retry for ever."""
        limit = self.limits()["MaxJobCount"]
        p = _run(["squeue", "-h", "-r", "--states=all", "-o", "%i"], "counting the jobs slurmctld holds", 60)
        held = len(p.stdout.split()) if p.returncode == 0 else 0
        room = max(0, limit - 1 - held)  # slurmctld takes a submission only while the count stays below the limit
        if n > room:
            raise ReproError(f"a batch of {n} runs does not fit in the cluster's MaxJobCount={limit} "
                             f"({held} job(s) held by slurmctld, room for {room}): submit at most {room} runs at a time")

    def run_index(self, job_id: str, workdir: Path) -> int:
        """The run index of a job id (its array's offset + its task id)."""
        array_id, task = job_id.rsplit("_", 1)
        jobdir = self.jobdir(workdir)
        key = str(jobdir)
        if key not in self._offsets:
            try:
                arrays = json.loads((jobdir / ARRAYS).read_text())
                self._offsets[key] = {str(a["array_id"]): int(a["offset"]) for a in arrays}
            except (OSError, ValueError, KeyError, TypeError):
                self._offsets[key] = {}  # a batch from before arrays.json: one array, offset 0
        return self._offsets[key].get(array_id, 0) + int(task)

    def _make_jobdir(self, batch: Batch) -> Path:
        if not self.config.jobs_dir:
            return batch.workdir
        jobdir = Path(self.config.jobs_dir).expanduser().resolve() / batch.workdir.name
        jobdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (batch.workdir / POINTER).write_text(str(jobdir) + "\n")
        return jobdir

    def job_script(self, jobdir: Path, python: str, record: Path) -> str:
        """The array job script (one for the whole batch)."""
        pythonpath = self.config.pythonpath or os.pathsep.join(
            p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p)
        setup = "\n".join(self.config.setup or [])
        q = shlex.quote
        return f"""#!/bin/bash
# repro-mlflow: Slurm array job, one MLflow run per array index of the batch record
i=$(( ${{SLURM_ARRAY_TASK_ID:-0}} + ${{1:-0}} ))  # $1: the array's offset in the batch (arrays.json)
d={q(str(jobdir))}/$i
mkdir -p -m 700 "$d"  # the run's files are its owner's alone, as the batch's
# the run's output.log is the very file Slurm writes this job's output to (sbatch --output), so Slurm's
# own lines (a time limit, a cancel) are in it too; without Slurm's file, the output is appended to it
ln -f {q(str(jobdir / OUT))}/"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}.log" "$d/output.log" 2>/dev/null \
  || exec >>"$d/output.log" 2>&1
rm -f "$d/rc" "$d/status.json"  # left by an earlier attempt of a requeued job
export PATH={q(str(Path(python).parent))}:"${{PATH:-/usr/local/bin:/usr/bin:/bin}}"
export PYTHONPATH={q(pythonpath)}
{setup}
trap 'echo "repro: job signalled" >&2' TERM INT
{q(python)} -m repro_mlflow.runtime {q(str(record))} "$i"
rc=$?
echo "$rc" > "$d/rc"
exit "$rc"
"""

    # ---- watch -------------------------------------------------------------------------------
    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """One squeue call for all the jobs (and one sacct call for those squeue forgot, with accounting)."""
        if not job_ids:
            return {}
        arrays = sorted({j.split("_")[0] for j in job_ids})
        p = _run(["squeue", "--array", "--states=all", "-h", "-O", SQUEUE_FORMAT, f"--jobs={','.join(arrays)}"],
                 "repro-slurm", 120)
        if p.returncode != 0 and "Invalid job id" not in (p.stderr or ""):
            raise ReproError(f"squeue failed: {_first_line(p)}")
        known = parse_squeue(p.stdout if p.returncode == 0 else "", self.config.requeue)
        missing = [j for j in job_ids if j not in known]
        if missing and self._sacct is not False:
            known.update(self._sacct_states(missing))
        return {j: known.get(j, JobState(None)) for j in job_ids}

    def _sacct_states(self, job_ids: list[str]) -> dict[str, JobState]:
        try:
            p = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", f"--jobs={','.join(job_ids)}"],
                               capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            self._sacct = False
            return {}
        if p.returncode != 0:
            self._sacct = False  # no accounting on this cluster: squeue and the exit files decide
            return {}
        self._sacct = True
        return parse_sacct(p.stdout, self.config.requeue)

    def exit_state(self, job_id: str, workdir: Path) -> JobState | None:
        """What a job that Slurm no longer knows left behind: the runtime's status.json, or the script's rc."""
        d = self.jobdir(workdir) / str(self.run_index(job_id, workdir))
        try:
            st = json.loads((d / "status.json").read_text())
            return JobState(st["status"], st.get("reason"))
        except (OSError, ValueError, KeyError):
            pass
        try:
            rc = int((d / "rc").read_text().strip())
        except (OSError, ValueError):
            return None
        if rc == 0:
            return JobState(FINISHED)
        if rc in (143, 130):
            return JobState(KILLED, f"stopped by a signal (exit code {rc})")
        return JobState(FAILED, f"exit code {rc}")

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        p = _run(["scancel", *job_ids], "repro-slurm", 60)
        if p.returncode != 0:
            raise ReproError(f"scancel failed: {_first_line(p)}")

    # ---- outputs -----------------------------------------------------------------------------
    @staticmethod
    def jobdir(workdir: Path) -> Path:
        """The job directory of a batch whose submit-side workdir is `workdir`."""
        pointer = Path(workdir) / POINTER
        return Path(pointer.read_text().strip()) if pointer.is_file() else Path(workdir)

    def fetch(self, job_id: str, run_id: str, workdir: Path) -> Path | None:
        bundle = self.results_path(job_id, workdir)
        return bundle if (bundle / "bundle.json").is_file() else None

    def results_path(self, job_id: str, workdir: Path) -> Path:
        """The run's local store, on the shared filesystem."""
        return self.jobdir(workdir) / str(self.run_index(job_id, workdir)) / "offline"

    def log_path(self, job_id: str, workdir: Path) -> Path:
        """The job's output file (sbatch --output): there from the job's start, even for a job cancelled before
        job.sh linked it as <i>/output.log; a batch submitted before out/ existed has only <i>/output.log."""
        jobdir = self.jobdir(workdir)
        if (jobdir / OUT).is_dir():
            return jobdir / OUT / f"{job_id}.log"
        return jobdir / str(self.run_index(job_id, workdir)) / "output.log"
