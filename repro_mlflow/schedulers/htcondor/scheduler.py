"""`repro-htcondor`: a batch is one HTCondor cluster (OSPool conventions), one proc per run (several
clusters of consecutive runs when the batch is larger than `MAX_JOBS_PER_SUBMISSION`, read with
`htcondor2.param`: each is one submit, recorded in `htcondor.json` and the batch record's `parts`).

Submit side, per batch directory `<REPRO_HOME>/batches/htcondor-...`:

    job.sub, items.txt     the submit description and its item data (`condor_submit job.sub` by hand)
    batch.json             the batch record (an input file of every proc): every run's command and
                           environment; its worker paths are relative to the proc's sandbox
    project.tar.gz, repro_runtime.zip, repro_job.py    the other input files and the executable
    cluster.log            the cluster's one event log: every status comes from here
    runs/<i>/              proc i's initialdir: job.out, job.err and `repro_out/` (output.log,
                           offline/ = the run's offline MLflow store), transferred back by HTCondor
    htcondor.json          cluster id (and `parts`: cluster, first run, count), schedd, hold policy

Job ids are `<cluster>.<proc>@<batch directory>` (`dry-run.<proc>@...` before a dry run is submitted
by hand); the run index is the cluster's first run + proc. Status comes from the event log (`events.py`); the schedd is asked only about held
jobs (their hold reason, then a release or a removal) and about procs the log does not mention.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar
from collections.abc import Callable, Sequence

from ...errors import ReproError
from . import submit as hs
from .config import HTCondorConfig
from .events import HELD, ProcState, hold_text, import_htcondor, last_cluster, read_log
from .pack import install_wrapper, pack_project, pack_runtime
from ..protocol import FAILED, SCHEDULED, Batch, JobState, SchedulerBase

# Tests (and embedders) plug in another schedd here: called with (schedd name, collector), returns an
# object with htcondor2.Schedd's submit/query/act. None: the real htcondor2.Schedd.
SCHEDD_FACTORY: Callable[[str | None, str | None], Any] | None = None

INFO = "htcondor.json"  # in the batch workdir: what polling needs (the batch record is batch.json)
USER_HOLD = 1  # HoldReasonCode of condor_hold: never released by policy
DEFAULT_MAX_JOBS_PER_SUBMISSION = 20000  # HTCondor's own default


def _connect(name: str | None, collector: str | None) -> Any:
    if SCHEDD_FACTORY is not None:
        return SCHEDD_FACTORY(name, collector)
    htcondor2 = import_htcondor()
    where = f" '{name}'" + (f" in pool {collector}" if collector else "") if name else ""
    try:
        if name:
            ad = htcondor2.Collector(collector).locate(htcondor2.DaemonType.Schedd, name)
            return htcondor2.Schedd(ad)
        return htcondor2.Schedd()
    except Exception as e:  # noqa: BLE001 - HTCondorException, ValueError, ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReproError(f"htcondor: cannot reach the schedd{where}: {msg} (is this an HTCondor access point?)") from None


def _local_uri(uri: str) -> bool:
    """A tracking URI that names a file on this machine, which an execute point cannot reach."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def split_job_id(job_id: str) -> tuple[str, int, Path]:
    """`<cluster>.<proc>@<batch dir>` -> (cluster, proc, batch dir)."""
    head, _, workdir = job_id.partition("@")
    cluster, _, proc = head.rpartition(".")
    if not workdir or not cluster or not proc.isdigit():
        raise ReproError(f"not a repro-htcondor job id: {job_id}")
    return cluster, int(proc), Path(workdir)


class HTCondorScheduler(SchedulerBase):
    config_class: ClassVar[type | None] = HTCondorConfig
    name: ClassVar[str] = "htcondor"

    def __init__(self, config: HTCondorConfig | None = None, schedd: Any = None):
        self._pending: list[tuple[Any, int, list[int], list[int]]] = []  # holds decided by poll, for reconcile
        self.config = config or HTCondorConfig()
        self._schedd_obj = schedd

    def _schedd(self, name: str | None, collector: str | None) -> Any:
        if self._schedd_obj is None:
            self._schedd_obj = _connect(name, collector)
        return self._schedd_obj

    # -- submit -------------------------------------------------------------------------------

    def submit(self, batch: Batch) -> list[str]:
        """Stage the batch's files and submit one cluster (one proc per run); a dry run only writes job.sub."""
        cfg, wd = self.config, Path(batch.workdir)
        try:
            inputs = [
                pack_runtime(wd / "repro_runtime.zip"),
                pack_project(batch.project_dir, wd / "project.tar.gz", skip=(wd, _repro_home(wd))),
                self._write_record(batch),
            ]
            exe = install_wrapper(wd / "repro_job.py")
            for i in range(len(batch.runs)):
                (wd / "runs" / str(i)).mkdir(parents=True, exist_ok=True)
            sub = hs.description(cfg, wd, inputs, exe)
            items = hs.item_data([r.run_id for r in batch.runs])
            sub_path, _ = hs.write_submit_files(sub, items, wd)
            cluster = None
            parts: list[dict[str, Any]] = []
            if cfg.dry_run:
                print(f"repro: dry run: wrote {sub_path} and {wd / 'items.txt'}; submit with: "
                      f"condor_submit {sub_path}   (then `repro sync` follows the runs)", file=sys.stderr)
            else:
                parts = self._submit_parts(sub, items)
                cluster = int(parts[0]["id"])
            (wd / INFO).write_text(json.dumps({
                "cluster": cluster, "schedd": cfg.schedd, "collector": cfg.collector,
                "max_releases": cfg.max_releases, "run_ids": [r.run_id for r in batch.runs],
                **({"parts": parts} if len(parts) > 1 else {}),
            }, indent=1))
        except BaseException:
            shutil.rmtree(wd, ignore_errors=True)
            raise
        if len(parts) > 1:
            batch.parts = parts
            return [f"{p['id']}.{i}@{wd}" for p in parts for i in range(p["count"])]
        head = str(cluster) if cluster is not None else "dry-run"
        return [f"{head}.{i}@{wd}" for i in range(len(batch.runs))]

    def max_jobs_per_submission(self) -> int:
        """`MAX_JOBS_PER_SUBMISSION` of this access point's configuration (the most procs one submit may queue)."""
        htcondor2 = import_htcondor()
        try:
            return max(1, int(htcondor2.param.get("MAX_JOBS_PER_SUBMISSION", DEFAULT_MAX_JOBS_PER_SUBMISSION)))
        except (TypeError, ValueError):
            return DEFAULT_MAX_JOBS_PER_SUBMISSION

    def _submit_parts(self, sub: Any, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        """One submit (one cluster) per `MAX_JOBS_PER_SUBMISSION` consecutive runs; on a refusal the clusters
        already queued are removed, so a refused batch leaves nothing behind."""
        cfg = self.config
        schedd = self._schedd(cfg.schedd, cfg.collector)
        size = self.max_jobs_per_submission()
        parts: list[dict[str, Any]] = []
        for first in range(0, len(items), size):
            chunk = items[first:first + size]
            try:
                result = schedd.submit(sub, itemdata=iter(chunk))
            except Exception as e:  # noqa: BLE001
                if parts:
                    htcondor2 = import_htcondor()
                    for p in parts:
                        schedd.act(htcondor2.JobAction.Remove, f"ClusterId == {p['id']}", reason="repro: batch refused")
                if isinstance(e, ReproError):
                    raise
                raise ReproError(f"htcondor: the schedd refused the batch: {str(e).strip() or type(e).__name__}") from None
            parts.append({"id": str(int(result.cluster())), "first": first, "count": len(chunk), "after": None})
        return parts

    def _write_record(self, batch: Batch) -> Path:
        """The batch record, as every proc reads it in its sandbox: worker paths relative to the sandbox."""
        cfg = self.config
        offline = cfg.offline if cfg.offline is not None else _local_uri(batch.tracking_uri)
        batch.layout["job_dirs"] = str(Path(batch.workdir) / "runs")  # submit side: runs/<i>/repro_out come back here
        batch.worker.update(cwd="project", run_dir=hs.OUT_DIR, offline=bool(offline),
                            env={str(k): str(v) for k, v in (cfg.env or {}).items()})
        return self.write_record(batch)

    # -- poll ---------------------------------------------------------------------------------

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """All jobs' states: one event-log read per batch; the schedd only for held or unlogged procs."""
        out: dict[str, JobState] = {}
        by_batch: dict[Path, list[tuple[str, str, int]]] = defaultdict(list)
        for jid in job_ids:
            c, proc, wd = split_job_id(jid)
            by_batch[wd].append((jid, c, proc))
        for wd, jobs in by_batch.items():
            out.update(self._poll_batch(wd, jobs))
        return out

    def _poll_batch(self, wd: Path, jobs: list[tuple[str, str, int]]) -> dict[str, JobState]:
        info = _load_info(wd)
        if info is None:
            return {jid: JobState(None, f"batch directory {wd} is gone") for jid, _c, _p in jobs}
        log = wd / hs.LOG_NAME
        by_cluster: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for jid, c, proc in jobs:
            cluster = int(c) if c.isdigit() else info.get("cluster")
            if cluster is None:
                cluster = last_cluster(log)
                if cluster is None:
                    return {jid: JobState(SCHEDULED, f"dry run: not submitted yet (condor_submit {wd / 'job.sub'})")
                            for jid, _c, _p in jobs}
            by_cluster[int(cluster)].append((jid, proc))
        out: dict[str, JobState] = {}
        for cluster, procs in by_cluster.items():
            out.update(self._poll_cluster(info, log, cluster, procs))
        return out

    def _poll_cluster(self, info: dict, log: Path, cluster: int, jobs: list[tuple[str, int]]) -> dict[str, JobState]:
        states = read_log(log, cluster)
        held = {p: st for (_c, p), st in states.items() if st.state == HELD and any(p == q for _, q in jobs)}
        decided = self._settle_holds(info, cluster, held) if held else {}
        unlogged = [p for _, p in jobs if (cluster, p) not in states]
        in_queue = self._procs_in_queue(info, cluster) if unlogged else set()
        out: dict[str, JobState] = {}
        for jid, p in jobs:
            st = states.get((cluster, p))
            if p in decided:
                out[jid] = decided[p]
            elif st is None:
                out[jid] = JobState(SCHEDULED) if in_queue is None or p in in_queue else \
                    JobState(None, "not in the schedd's queue and not in the event log")
            else:
                out[jid] = JobState(st.state, st.reason, st.attempt)
        return out

    def _settle_holds(self, info: dict, cluster: int, held: dict[int, ProcState]) -> dict[int, JobState]:
        """Decide each held proc: released while the policy allows (`max_releases`), else FAILED and removed
        from the queue; the schedd is acted on later, by `reconcile`."""
        try:
            schedd = self._schedd(info.get("schedd"), info.get("collector"))
            ads = schedd.query(constraint=f"ClusterId == {cluster} && JobStatus == 5",
                               projection=["ProcId", "HoldReason", "HoldReasonCode", "HoldReasonSubCode"])
        except Exception as e:  # noqa: BLE001 - report from the log alone
            print(f"repro: htcondor: could not ask the schedd about held jobs: {e}", file=sys.stderr)
            schedd, ads = None, []
        for ad in ads:  # the schedd's hold reason is the current one; the event's may be empty
            st = held.get(int(ad.get("ProcId", -1)))
            if st is not None:
                st.hold_reason = ad.get("HoldReason") or st.hold_reason
                st.hold_code = ad.get("HoldReasonCode", st.hold_code)
                st.hold_subcode = ad.get("HoldReasonSubCode", st.hold_subcode)
        out: dict[int, JobState] = {}
        release, remove = [], []
        for p, st in held.items():
            if st.hold_code != USER_HOLD and st.holds <= int(info.get("max_releases", 0)):
                release.append(p)
                out[p] = JobState(SCHEDULED, f"released after {hold_text(st)}", st.starts + 1 if st.starts else 1)
            else:
                remove.append(p)
                out[p] = JobState(FAILED, hold_text(st), st.attempt)
        if schedd is not None:
            self._pending.append((schedd, cluster, release, remove))  # acted on by `reconcile`, not here
        return out

    def reconcile(self, job_ids: Sequence[str], states: dict[str, JobState]) -> None:
        """Release or remove the held procs the last `poll` decided on (poll itself only reads)."""
        htcondor2 = import_htcondor() if self._pending else None
        pending, self._pending = self._pending, []
        for schedd, cluster, release, remove in pending:
            for action, procs, why in ((htcondor2.JobAction.Release, release, "repro: release policy"),
                                       (htcondor2.JobAction.Remove, remove, "repro: held, run marked FAILED")):
                if procs:
                    try:
                        schedd.act(action, [f"{cluster}.{p}" for p in procs], reason=why)
                    except Exception as e:  # noqa: BLE001
                        print(f"repro: htcondor: {action.name} of {cluster}.{procs} failed: {e}", file=sys.stderr)

    def _procs_in_queue(self, info: dict, cluster: int) -> set[int] | None:
        """Procs of `cluster` the schedd still has; None when the schedd cannot be asked."""
        try:
            schedd = self._schedd(info.get("schedd"), info.get("collector"))
            return {int(ad["ProcId"]) for ad in schedd.query(constraint=f"ClusterId == {cluster}", projection=["ProcId"])}
        except Exception:  # noqa: BLE001
            return None

    # -- cancel / fetch -----------------------------------------------------------------------

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Remove the jobs (`JobAction.Remove`), one schedd call per batch."""
        htcondor2 = import_htcondor()
        by_batch: dict[tuple[Path, str], list[int]] = defaultdict(list)
        for jid in job_ids:
            c, proc, wd = split_job_id(jid)
            by_batch[(wd, c)].append(proc)
        for (wd, c), procs in by_batch.items():
            info = _load_info(wd) or {}
            cluster = int(c) if c.isdigit() else info.get("cluster") or last_cluster(wd / hs.LOG_NAME)
            if cluster is None:
                continue  # a dry run never submitted: nothing in any queue
            schedd = self._schedd(info.get("schedd"), info.get("collector"))
            schedd.act(htcondor2.JobAction.Remove, [f"{cluster}.{p}" for p in procs], reason="repro: cancelled")

    def fetch(self, job_id: str, run_id: str, workdir: Path) -> Path | None:
        """The run's offline store, as HTCondor's output transfer left it in `<batch>/runs/<i>/repro_out/offline`."""
        c, proc, wd = split_job_id(job_id)
        info = _load_info(wd) or {}
        index = run_index(info, c, proc)
        ids = info.get("run_ids") or []
        if index < len(ids) and ids[index] != run_id:
            return None
        bundle = _store_dir(wd, index)
        if not (bundle.is_dir() and any(bundle.iterdir())):
            return None
        return bundle  # its store's artifact URIs name the sandbox: the reader re-roots them (runtime/localstore.py)

    def results_path(self, job_id: str, workdir: Path) -> Path:
        """Where HTCondor's output transfer leaves the run's local store: `<batch>/runs/<i>/repro_out/offline`.
        The shadow transfers the outputs before it logs the job's end, so an ended job without it lost them."""
        c, proc, wd = split_job_id(job_id)
        return _store_dir(wd, run_index(_load_info(wd) or {}, c, proc))


def _store_dir(wd: Path, index: int) -> Path:
    """Run `index`'s local store as the output transfer leaves it in batch directory `wd`."""
    return wd / "runs" / str(index) / hs.OUT_DIR / "offline"


def run_index(info: dict, cluster: str, proc: int) -> int:
    """The run index of proc `proc` of `cluster` in a batch (its part's first run + proc)."""
    first = {str(p["id"]): int(p["first"]) for p in info.get("parts") or []}
    return first.get(str(cluster), 0) + proc


def _load_info(wd: Path) -> dict | None:
    for name in (INFO, "batch.json"):  # batch.json: a batch submitted before the batch record took that name
        try:
            info = json.loads((Path(wd) / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and "max_releases" in info:
            return info
    return None


def _repro_home(wd: Path) -> Path:
    """`<REPRO_HOME>` of a batch directory `<REPRO_HOME>/batches/<name>` (kept out of the project tarball)."""
    return Path(os.environ.get("REPRO_HOME", wd.parent.parent)).resolve()
