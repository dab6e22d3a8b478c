"""Reconcile unfinished repro runs with their schedulers: one poll per scheduler, never a run left RUNNING
after its job is gone, offline results replayed into their runs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from .. import tags as T
from . import get_scheduler, mlflow_side
from .protocol import TERMINAL


@dataclass
class SyncReport:
    checked: int = 0
    ended: dict[str, str] = field(default_factory=dict)  # run id -> new status
    replayed: list[str] = field(default_factory=list)


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


def sync_runs(client: MlflowClient, runs: Iterable[Run], replay: bool = True, quiet: bool = False) -> SyncReport:
    """Poll each scheduler once for all its runs' jobs; end runs whose jobs ended or vanished."""
    report = SyncReport()
    by_backend: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run.info.status in TERMINAL or T.BACKEND not in run.data.tags:
            continue
        by_backend[run.data.tags[T.BACKEND]].append(run)
    for backend, group in by_backend.items():
        scheduler = get_scheduler(backend, {})
        jobs = {r.data.tags.get(T.JOB_ID): r for r in group if r.data.tags.get(T.JOB_ID)}
        states = scheduler.poll(list(jobs))
        for job_id, run in jobs.items():
            report.checked += 1
            st = states.get(job_id)
            if st is None or st.state not in TERMINAL and st.state is not None:
                continue
            rid = run.info.run_id
            if replay:
                from .offline import replay_bundle

                bundle = scheduler.fetch(job_id, rid, Path(run.data.tags.get(T.WORKDIR, ".")))
                if bundle is not None and replay_bundle(client, rid, bundle):
                    report.replayed.append(rid)
            current = client.get_run(rid).info.status
            if current in TERMINAL:
                continue
            status = st.state or "FAILED"
            reason = st.reason or ("job vanished from the scheduler" if st.state is None else None)
            mlflow_side.end_run(client, rid, status, reason)
            report.ended[rid] = status
    return report
