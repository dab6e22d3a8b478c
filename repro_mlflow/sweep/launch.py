"""What `hydra/launcher=repro` does with a whole multirun: compose, plan, build envs, submit, then watch or detach."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from rich.console import Console

from ..errors import ReproError
from ..submit.runtime_env import check_runtime_env
from . import report
from .compose import JobComposer
from .plan import Plan, Planner, build_plan


def _prog() -> str:
    return Path(sys.argv[0]).name or "repro-sweep"


def plan_sweep(launcher: Any, job_overrides: Sequence[Sequence[str]]) -> Plan:
    """Every job composed and planned; nothing touches MLflow here."""
    if not job_overrides:
        raise ReproError("empty sweep: no runs to plan")
    composer = JobComposer(launcher.hydra_context.config_loader, launcher.config, launcher.node)
    planner = Planner()
    return build_plan(planner.plan_job(composer.job(ov), ov) for ov in job_overrides)


def launch_sweep(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int = 0) -> list[JobReturn]:
    """Plan and submit every job; watch them unless detached. Bad input exits with one line, nothing created;
    any other error is one line too, unless HYDRA_FULL_ERROR=1 asks for the trace."""
    report.restore_user_setting()  # the runs get the user's HYDRA_FULL_ERROR, not repro-sweep's
    try:
        return _launch(launcher, job_overrides)
    except ReproError as e:
        raise SystemExit(f"{_prog()}: error: {e}") from None
    except Exception as e:  # noqa: BLE001 - e.g. the tracking store cannot be reached
        if report.full_error():
            raise
        raise SystemExit(f"{_prog()}: error: {report.one_line(e)}") from None


def _launch(launcher: Any, job_overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    console = Console(stderr=True, soft_wrap=True)
    t0 = time.perf_counter()
    plan = plan_sweep(launcher, job_overrides)
    t_plan = time.perf_counter() - t0
    if launcher.dry_run:
        _print_plan(plan, t_plan, console)
        return [JobReturn(overrides=list(ov), status=JobStatus.COMPLETED, _return_value=plan.sweep) for ov in job_overrides]
    check_runtime_env(os.environ)  # before an env is built or anything exists
    pythons = _prepare_envs(plan, console)
    _project_envs(plan, console)
    sub = _submit(plan, pythons, launcher.force, console)
    t_all = time.perf_counter() - t0
    for note in plan.notes:
        console.print(f"note: {note}")
    console.print(
        f"sweep [bold]{plan.sweep}[/] (experiment {plan.experiment}): {len(plan.runs)} run(s) planned in {t_plan:.2f}s; "
        f"{len(sub.run_ids)} submitted in {sub.batches} batch(es), {len(sub.skipped_finished)} already FINISHED, "
        f"{len(sub.adopted)} still running from before, {sub.resubmitted} resubmitted after failing ({t_all:.2f}s)"
    )
    watched = sub.run_ids + sub.adopted
    ok = True
    if launcher.detach or not watched:
        console.print(f"follow: repro status --sweep {plan.sweep} --watch   reconcile: repro sync --sweep {plan.sweep}")
    else:
        from .progress import watch

        from .submit import client_for

        outcome = watch(client_for(plan), sub.experiment_id, plan.sweep, watched, launcher.poll_interval,
                        len(sub.skipped_finished), console)
        if outcome.interrupted:
            console.print(f"stopped watching; the runs go on. follow: repro status --sweep {plan.sweep} --watch")
        else:
            c = outcome.counts
            console.print(f"sweep {plan.sweep}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())))
            from ..runtime.reason import group

            for status in ("FAILED", "KILLED"):  # the same lines as `repro status`: one per reason
                pairs = [(rid, why) for rid, _t, st, why in outcome.failures if st == status]
                for n, why, rid in group(pairs):
                    console.print(f"{n} {status}: {why} (e.g. run {rid})", markup=False, highlight=False, soft_wrap=True)
            ok = outcome.ok
    results = [JobReturn(overrides=list(ov), status=JobStatus.COMPLETED, _return_value=plan.sweep) for ov in job_overrides]
    if not ok:
        raise SystemExit(1)
    return results


def _print_plan(plan: Plan, t_plan: float, console: Console) -> None:
    for note in plan.notes:
        console.print(f"note: {note}")
    console.print(f"sweep {plan.sweep} (experiment {plan.experiment}): {len(plan.runs)} run(s) planned in {t_plan:.2f}s"
                  + (f", {plan.duplicates} duplicate(s) dropped" if plan.duplicates else "") + "; dry run, nothing submitted")
    for (target, sw), runs in plan.groups().items():
        console.print(f"  {target.name} ({target.backend}), software {sw.name}: {len(runs)} run(s) in one batch")
        for r in runs[:20]:
            console.print(f"    {r.config_hash} r{r.repeat} {r.entry_point} " + " ".join(f"{k}={v}" for k, v in r.params.items()))
        if len(runs) > 20:
            console.print(f"    ... {len(runs) - 20} more")


def _prepare_envs(plan: Plan, console: Console) -> dict:
    """Build (or find cached) each software env the plan uses; before any MLflow run exists."""
    from ..envs.software import ensure_env, is_built

    pythons = {}
    for sw in {r.software for r in plan.runs}:
        if is_built(sw):
            pythons[sw] = ensure_env(sw)
            continue
        with console.status(f"building software env '{sw.name}' ({', '.join(sw.pins)}), once; later sweeps reuse it"):
            pythons[sw] = ensure_env(sw, log=console.print)
    return pythons


def _project_envs(plan: Plan, console: Console) -> None:
    """The environment the project declares (python_env.yaml, conda.yaml), built once, for the runs of
    software `current` (a software entry with pins is an env of its own); before any MLflow run exists."""
    from ..envs.project_env import resolve
    from ..schedulers import scheduler_class

    envs: dict = {}
    for run in plan.runs:
        if not run.software.is_current:
            continue
        key = (run.project_dir, run.target.backend)
        if key not in envs:
            cls = scheduler_class(run.target.backend)
            envs[key] = resolve(run.project_dir, None, run.target.backend, log=console.print,
                                shared_fs=bool(cls and cls.shared_fs))
        run.env, run.env_tags = envs[key].run_env(), envs[key].tags()


def _submit(plan: Plan, pythons: dict, force: bool, console: Console):
    import mlflow

    from . import submitter
    from .submit import schedulers, submit_here

    scheds = schedulers(plan, pythons)  # every scheduler config checked before the store is opened
    check_runtime_env(*(getattr(s.config, "env", None) for s in scheds.values()))
    for sched in scheds.values():
        sched.preflight()  # an interpreter, a partition: before any run or batch directory exists

    if plan.tracking_uri:
        mlflow.set_tracking_uri(plan.tracking_uri)
    else:
        plan.tracking_uri = mlflow.get_tracking_uri()
    child = submitter.take()  # started by repro-sweep before Hydra: MLflow's store already imported there
    if child is not None:
        return child.submit(plan, pythons, force, scheds)
    return submit_here(plan, pythons, force, scheds)
