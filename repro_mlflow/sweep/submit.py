"""Submit a plan: skip what already FINISHED, adopt what still runs, resubmit what failed; one batch per target."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Callable

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from .. import tags as T
from ..schedulers import SCHEDULERS, get_scheduler
from ..submit.batch import submit_batch
from ..submit.mlflow_side import end_run
from ..schedulers.protocol import FINISHED, TERMINAL
from ..errors import ReproError
from ..envs.software import Software
from .plan import Plan, PlannedRun, Target


LOST_AFTER_S = 600  # a run still without a job id this long after its creation was never submitted


@dataclass
class Submission:
    """What one sweep invocation did."""

    sweep: str
    experiment_id: str
    submitted: dict[str, list[str]] = field(default_factory=dict)  # target -> new run ids
    batches: int = 0
    skipped_finished: list[str] = field(default_factory=list)  # run ids already FINISHED
    adopted: list[str] = field(default_factory=list)  # run ids still running from an earlier invocation
    resubmitted: int = 0  # planned runs whose earlier attempts FAILED or were KILLED

    @property
    def run_ids(self) -> list[str]:
        return [rid for ids in self.submitted.values() for rid in ids]


def experiment_id(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name)
    if exp.lifecycle_stage != "active":
        raise ReproError(f"experiment '{name}' is deleted; restore it or choose another experiment")
    return exp.experiment_id


def _existing(client: MlflowClient, exp_id: str, targets: set[str]) -> dict[tuple[str, str, str], list[Run]]:
    """Earlier sweep runs in the experiment, by (config hash, repeat, target)."""
    out: dict[tuple[str, str, str], list[Run]] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], f"tags.`{T.CONFIG_HASH}` != ''", max_results=5000, page_token=token)
        for run in page:
            t = run.data.tags
            if t.get(T.TARGET) in targets:
                out.setdefault((t.get(T.CONFIG_HASH, ""), t.get(T.REPEAT, ""), t.get(T.TARGET, "")), []).append(run)
        token = page.token
        if not token:
            return out


def scheduler_config(target: Target, python: str | None, image: str | None) -> dict:
    """The target's backend config plus, where the scheduler takes them, the software env's python and image."""
    import importlib

    cfg = target.config()
    mod, cls, _conf = SCHEDULERS[target.backend]
    try:
        fields = getattr(importlib.import_module(mod), cls).config_fields()
    except ModuleNotFoundError:
        fields = frozenset()
    if python:
        if "python" not in fields:
            raise ReproError(f"target {target.name}: the {target.backend} backend cannot run a software virtualenv; use a container image")
        cfg["python"] = python
    container = image or target.container
    if container:
        key = next((k for k in ("container", "image") if k in fields), None)
        if key is None:
            if image:
                raise ReproError(f"target {target.name}: the {target.backend} backend does not run container images "
                                 f"(software image {image}); use pins, or a container target")
        else:
            cfg.setdefault(key, container)
    return cfg


def schedulers(plan: Plan, pythons: dict[Software, str | None]) -> dict[tuple[Target, Software], object]:
    """One scheduler per batch, built (and its config checked) before anything is created."""
    return {(t, sw): get_scheduler(t.backend, scheduler_config(t, pythons.get(sw), sw.image)) for t, sw in plan.groups()}


def submit_plan(client: MlflowClient, plan: Plan, pythons: dict[Software, str | None], force: bool = False,
                log: Callable[[str], None] = print, scheds: dict | None = None) -> Submission:
    """Create and submit the plan's missing runs, one batch per (target, software); return what happened."""
    from ..submit.sync import sync_runs

    scheds = scheds or schedulers(plan, pythons)
    exp_id = experiment_id(client, plan.experiment)
    sub = Submission(plan.sweep, exp_id)
    existing = {} if force else _existing(client, exp_id, {r.target.name for r in plan.runs})
    # Reconcile earlier runs that look unfinished, so a dead job is resubmitted instead of waited on.
    unfinished = [run for runs in existing.values() for run in runs if run.info.status not in TERMINAL]
    if unfinished:
        sync_runs(client, unfinished)
        # A run created but never handed to its scheduler (the submitting process died in between) has
        # no job id and never will: after a grace period it is ended, so resume resubmits it.
        now_ms = time.time() * 1000
        for run in unfinished:
            if not run.data.tags.get(T.JOB_ID) and now_ms - (run.info.start_time or now_ms) > LOST_AFTER_S * 1000:
                end_run(client, run.info.run_id, "KILLED", "never submitted: the submitting process was interrupted")
        existing = _existing(client, exp_id, {r.target.name for r in plan.runs})
    todo: list[tuple[PlannedRun, int]] = []
    for run in plan.runs:
        earlier = existing.get(run.key, [])
        done = [r for r in earlier if r.info.status == FINISHED]
        live = [r for r in earlier if r.info.status not in TERMINAL]
        if done:
            sub.skipped_finished.append(done[0].info.run_id)
        elif live:
            sub.adopted.append(live[0].info.run_id)
        else:
            if earlier:
                sub.resubmitted += 1
            todo.append((run, len(earlier) + 1))
    batches: dict[tuple[Target, Software], list[tuple[PlannedRun, int]]] = {}
    for run, attempt in todo:
        batches.setdefault((run.target, run.software), []).append((run, attempt))
    for (target, software), items in batches.items():
        scheduler = scheds[(target, software)]
        specs = [run.spec(plan.sweep, attempt) for run, attempt in items]
        ids = submit_batch(client, scheduler, specs, items[0][0].project_dir, exp_id, plan.tracking_uri, target=target.name)
        sub.submitted.setdefault(target.name, []).extend(ids)
        sub.batches += 1
        log(f"submitted {len(ids)} run(s) to {target.name} ({target.backend}, software {software.name}) as one batch")
    return sub


def client_for(plan: Plan) -> MlflowClient:
    """A client of the plan's tracking store (a tracking server is checked to answer first)."""
    from ..reach import check_tracking_server

    check_tracking_server(plan.tracking_uri)
    return MlflowClient(plan.tracking_uri or None)


def submit_here(plan: Plan, pythons: dict[Software, str | None], force: bool, scheds: dict | None = None) -> Submission:
    """Create and submit the plan's missing runs from this process, progress on stderr."""
    import mlflow
    from rich.console import Console

    mlflow.set_tracking_uri(plan.tracking_uri)
    console = Console(stderr=True, soft_wrap=True)
    return submit_plan(client_for(plan), plan, pythons, force, log=console.print, scheds=scheds)
