"""Reconcile unfinished repro runs with their schedulers: one poll per scheduler, never a run left RUNNING
after its job is gone, offline results replayed into their runs.

For every unfinished run (status not FINISHED/FAILED/KILLED, tag `repro.backend` set), grouped by
scheduler as its batch record gives it (name and full config, `submit/rebuild.py`: never the
defaults; runs of batches with the same config share one poll), `sync_runs`:

1. calls `Scheduler.poll` ONCE with all the group's job ids (a poll that fails is reported in
   `SyncReport.errors` and changes nothing: an unreachable scheduler is not a vanished job);
2. for a job the scheduler no longer knows (`JobState(None)`), asks the scheduler's
   `exit_state(job_id, workdir) -> JobState | None` what the job left behind (an exit file; by default nothing);
3. sets `repro.attempt` when `JobState.attempt` differs from the run's (a requeued/restarted job),
   and SCHEDULED -> RUNNING when the job runs;
4. for an ended or vanished job: `Scheduler.fetch` + `offline.replay_bundle` (exactly once), then,
   if the run is still not terminal, ends it with the job's state and `repro.status_reason`
   (a vanished job with nothing left behind: FAILED, "job vanished from the scheduler").
   A local store its runtime never ended (the runtime was killed: the scheduler says the job ended
   only once its entry point is gone too) is ended first as the runtime would have
   (`offline.close_unfinished`: output.log attached, FAILED, the last local write as end time),
   then replayed whole. A job whose local store `fetch` does not find where it should be once the job
   ended (`Scheduler.results_path`: a path on the submit side, HTCondor's transferred output, EC2's S3
   upload; the last two for a job its scheduler saw finish) ends FAILED, "local results lost: <where> missing":
   never FINISHED with nothing delivered.
   A replay that fails (the tracking server went away half-way) leaves the run as it is, never
   ends it without its results: the next sync completes the replay.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Iterable

from .. import tags as T
from .rebuild import Rebuilder, legacy_note
from ..schedulers.protocol import FAILED, FINISHED, KILLED, RUNNING, SCHEDULED, TERMINAL, JobState

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

VANISHED = "job vanished from the scheduler"
LOST = "local results lost: {path} missing"


@dataclass
class SyncReport:
    checked: int = 0
    ended: dict[str, str] = field(default_factory=dict)  # run id -> new status
    replayed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # backend (or run id) -> why it could not be polled (replayed)
    notes: list[str] = field(default_factory=list)  # e.g. runs without a batch record, polled with default configs


def unfinished_runs(client: MlflowClient, experiment_ids: list[str], extra_filter: str = "") -> list[Run]:
    """Every repro run in these experiments that is not terminal."""
    flt = "attributes.status != 'FINISHED' and attributes.status != 'FAILED' and attributes.status != 'KILLED'"
    flt = f"{flt} and tags.`{T.BACKEND}` != ''" + (f" and {extra_filter}" if extra_filter else "")
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, flt, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def sync_runs(client: MlflowClient, runs: Iterable[Run], replay: bool = True, quiet: bool = False,
              schedulers: dict | None = None, rebuilder: Rebuilder | None = None) -> SyncReport:
    """Poll each scheduler once for all its runs' jobs; end runs whose jobs ended or vanished.

    Each run's scheduler is rebuilt from its batch record (`rebuilder`, shared by a watcher across
    ticks so each record is read once); `schedulers` (backend name -> scheduler) overrides that.
    """
    report = SyncReport()
    rebuilder = rebuilder or Rebuilder()
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.info.status in TERMINAL or T.BACKEND not in run.data.tags:
            continue
        backend = run.data.tags[T.BACKEND]
        try:
            key = (backend, "") if backend in (schedulers or {}) else rebuilder.key(run)
        except Exception as e:  # noqa: BLE001 - a record refused (one line): this run is left as it is
            report.errors[run.info.run_id] = _line(e)
            continue
        groups[key].append(run)
    for (backend, _config), group in groups.items():
        try:
            scheduler = (schedulers or {}).get(backend) or rebuilder.scheduler(group[0])
            jobs = {r.data.tags.get(T.JOB_ID): r for r in group if r.data.tags.get(T.JOB_ID)}
            states = scheduler.poll(list(jobs)) if jobs else {}  # reads only
            if jobs:
                scheduler.reconcile(list(jobs), states)  # acts: release a held job, stop an idle machine
        except Exception as e:  # noqa: BLE001 - one scheduler down must not stop the others
            report.errors[backend] = _line(e)
            continue
        for job_id, run in jobs.items():
            report.checked += 1
            _sync_one(client, scheduler, run, job_id, states.get(job_id), replay, report)
    note = legacy_note(rebuilder.legacy)
    if note:
        report.notes.append(note)
    return report


def _line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _sync_one(client: MlflowClient, scheduler, run: Run, job_id: str, st: JobState | None, replay: bool,
              report: SyncReport) -> None:
    rid = run.info.run_id
    workdir = Path(run.data.tags.get(T.WORKDIR, "."))
    if st is None:
        return  # the scheduler said nothing about this job: leave it
    if st.state is None:
        st = scheduler.exit_state(job_id, workdir) or st
    if st.attempt is not None and str(st.attempt) != run.data.tags.get(T.ATTEMPT):
        client.set_tag(rid, T.ATTEMPT, str(st.attempt))
        if st.state == SCHEDULED and run.info.status == RUNNING:
            client.update_run(rid, status=SCHEDULED)  # requeued: waiting for its next attempt
    if st.state == RUNNING and run.info.status == SCHEDULED:
        client.update_run(rid, status=RUNNING)
    if st.state is not None and st.state not in TERMINAL:
        return
    status = st.state or "FAILED"
    reason = st.reason or (VANISHED if st.state is None else None)
    if replay:
        from .offline import close_unfinished, has_store, replay_bundle

        try:
            bundle = scheduler.fetch(job_id, rid, workdir)
            expected = scheduler.results_path(job_id, workdir)
            # on a shared filesystem the store is written in place, so it is there however the job ended; a
            # transferred or uploaded one (HTCondor, EC2) comes back once the job said it finished
            looked = status != KILLED and (getattr(scheduler, "shared_fs", False) or st.state == FINISHED)
            if not has_store(bundle) and expected is not None and looked:
                # nothing to deliver from: never FINISHED (a scratch purge, a lost node disk)
                status, lost = FAILED, LOST.format(path=expected)
                reason = lost if st.state in (FINISHED, None) or not reason else f"{reason}; {lost}"
                bundle = None
            if bundle is not None and has_store(bundle):
                close_unfinished(bundle, FAILED if status == FINISHED else status, reason or "the runtime ended "
                                 "without ending the run", scheduler.log_path(job_id, workdir))
            if bundle is not None and replay_bundle(client, rid, bundle):
                report.replayed.append(rid)
        except Exception as e:  # noqa: BLE001 - left as it is: a later sync replays the rest, exactly once
            report.errors[rid] = f"could not replay its results: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            return
    current = client.get_run(rid).info.status
    if current in TERMINAL:
        if replay and rid in report.replayed:
            report.ended[rid] = current
        return
    from . import mlflow_side  # MLflow's entities: only when a run is ended

    mlflow_side.end_run(client, rid, status, reason)
    report.ended[rid] = status
