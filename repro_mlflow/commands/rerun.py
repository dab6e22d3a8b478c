"""`repro rerun RUN_ID [--on TARGET,…]`: re-create a past run (same project, entry point, params,
repro.det.*, config hash and software) N times on its own backend or on hardware targets, and follow them.

Before anything is created it checks that the run can be re-created faithfully, and says in one
line what is missing when it cannot: a project source with the entry point; the same project files
(each file the batch shipped, listed at submit beside its record, with `repro.project.digest` on
the run: the recorded source, else the batch's staged copy; files added since do not count); the
same software on each target (the interpreter or image of the original batch, which a target must
be able to run: `--allow-different-software` runs in the target's own, recorded in `repro.rerun.software`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def _source(run) -> tuple[Path, str]:
    """The run's project directory and entry point, or a one-line ReproError saying what is missing."""
    from mlflow.utils.mlflow_tags import MLFLOW_PROJECT_ENTRY_POINT, MLFLOW_SOURCE_NAME

    from ..errors import ReproError
    from ..submit.project import load_entry_points

    rid = run.info.run_id
    src = run.data.tags.get(MLFLOW_SOURCE_NAME, "")
    entry = run.data.tags.get(MLFLOW_PROJECT_ENTRY_POINT, "")
    if not src or not (Path(src) / "MLproject").is_file():
        raise ReproError(f"cannot rerun {rid}: no recoverable project source (no MLproject at '{src or '(none recorded)'}')")
    if not entry or entry not in load_entry_points(Path(src)):
        raise ReproError(f"cannot rerun {rid}: unknown entry point '{entry or '(none recorded)'}' in {src}")
    return Path(src), entry


def project_dir_of(run, source: Path, staged: str | None, workdir: str | None) -> tuple[Path, str | None]:
    """The directory holding the run's project as it was submitted, and a note to print (or None).

    The recorded source when none of the files its batch shipped has changed (files added since, such
    as the run's own outputs, do not count), else the batch's staged copy when that holds them; a run
    recorded before digests existed is rerun from its source as it is now (noted)."""
    from .. import tags as T
    from ..errors import ReproError
    from ..submit import provenance

    rid = run.info.run_id
    want = run.data.tags.get(T.PROJECT_DIGEST)
    listing = provenance.read_listing(Path(workdir)) if workdir else None
    if not want or listing is None:
        return source, (f"note: {rid} recorded no project listing (made by an earlier repro-mlflow): "
                        f"its project is rerun as it is now at {source}")
    changed = provenance.changed_files(source, listing)
    if not changed:
        return source, None
    if staged and Path(staged) != source and (Path(staged) / "MLproject").is_file() \
            and not provenance.changed_files(Path(staged), listing):
        return Path(staged), f"note: the project at {source} changed since {rid}: rerunning its staged copy {staged}"
    commit = run.data.tags.get(T.PROJECT_COMMIT)
    hint = f"; it was commit {commit[:12]}: check that out and rerun" if commit else ""
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    raise ReproError(f"cannot rerun {rid}: the project at {source} changed since the run ({shown}) "
                     f"and no staged copy of it is left{hint}")


def load_target(name: str) -> Any:
    """The hardware target `name` (conf/hardware/NAME.yaml), composed by Hydra, as a sweep would use it."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from ..errors import ReproError
    from ..sweep import schema
    from ..sweep.app import CONF, _find_plugin
    from ..sweep.plan import Target

    _find_plugin()
    schema.register()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"hardware={name}"])
    except HydraException:
        known = ", ".join(sorted(p.stem for p in (CONF / "hardware").glob("*.yaml")))
        raise ReproError(f"unknown target '{name}' (known: {known})") from None
    return Target.from_dict(OmegaConf.to_container(cfg.hardware, resolve=True))


def software_on(target: Any, record: Any, allow_different: bool) -> tuple[dict, str]:
    """(scheduler config for `target`, repro.rerun.software) running the original batch's software there.

    The original's software is its batch's container image, else its interpreter; a target runs the
    image when its backend takes one, the interpreter when its jobs share this machine's files and
    the backend takes a python. Otherwise a one-line ReproError, unless `allow_different`."""
    from ..errors import ReproError
    from ..schedulers import scheduler_class
    from ..sweep.submit import scheduler_config

    image = record.config.get("container") or record.config.get("image")
    python = record.layout.get("python")
    cls = scheduler_class(target.backend)
    fields = cls.config_fields() if cls else frozenset()
    if image and {"container", "image"} & fields:
        return scheduler_config(target, None, image), "same"
    if not image and python and "python" in fields and cls.shared_fs and Path(python).exists():
        return scheduler_config(target, python, None), "same"
    original = f"image {image}" if image else f"python {python}"
    if not allow_different:
        why = ("does not run container images" if image else
               "has no shared filesystem with this machine" if cls is not None and not cls.shared_fs else
               "cannot run that interpreter")
        raise ReproError(f"cannot rerun on {target.name}: the original's software ({original}) cannot be rebuilt there "
                         f"(the {target.backend} backend {why}); --allow-different-software runs in the target's own "
                         "software and records the difference")
    return scheduler_config(target, None, None), f"the target's own (original: {original})"


def _project_env(run, project_dir: Path, scheduler: Any, recorded: dict) -> tuple[dict, dict]:
    """(environment, tags) of the project's declared env for a rerun: rebuilt (or found in the cache) as
    the original's was, from the env manager it recorded; else the original run's recorded environment."""
    from ..envs import project_env

    manager = run.data.tags.get(project_env.ENV_MANAGER_TAG)
    if not manager:
        return dict(recorded), {}
    env = project_env.resolve(project_dir, manager, scheduler.name, shared_fs=scheduler.shared_fs,
                              log=lambda m: print(f"repro: {m}"))
    return env.run_env(), env.tags()


def rerun_lines(df: Any, original: str, metrics: list[str]) -> list[str]:
    """One line per metric (the first says how many reruns): the original's value and the reruns', whether
    they are bit-identical, and on which targets they differ."""
    from .. import tags as T

    lines = []
    is_orig = df["run_id"] == original
    for m in metrics:
        col = f"metrics.{m}"
        if col not in df.columns:
            continue
        o = df.loc[is_orig, col]
        others = df.loc[~is_orig, col].dropna()
        ov = o.iloc[0] if len(o) else None
        same = len(others) > 0 and bool((others == ov).all())
        verdict = "bit-identical to the original" if same else "differs from the original"
        where = ""
        if not same and f"tags.{T.TARGET}" in df.columns:
            differ = sorted(set(df.loc[~is_orig & (df[col] != ov), f"tags.{T.TARGET}"].dropna().astype(str)))
            where = f" (on {', '.join(differ)})" if differ else ""
        head = f"rerun of {original}: {int((~is_orig).sum())} rerun(s); " if not lines else "  "
        lines.append(f"{head}{m} {verdict}{where}: original {ov!r}, reruns {sorted(others.tolist())}")
    return lines


def _cmd_rerun(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from .. import tags as T
    from ..errors import ReproError
    from ..schedulers import get_scheduler
    from ..schedulers.protocol import FINISHED, TERMINAL
    from ..submit.batch import submit_batch
    from ..submit.project import make_spec
    from ..submit.rebuild import Rebuilder
    from ..submit.sync import sync_runs

    if args.repeat < 1:
        raise ReproError("--repeat must be at least 1")
    client = MlflowClient(args.tracking_uri) if args.tracking_uri else MlflowClient()
    run = client.get_run(args.run_id)
    source, entry = _source(run)
    tags = run.data.tags
    if not tags.get(T.RECORD):
        raise ReproError(f"cannot rerun {args.run_id}: it has no batch record (not launched by a repro backend)")
    rebuilder = Rebuilder()
    record = rebuilder.record(run)
    project_dir, note = project_dir_of(run, source, record.layout.get("project") if record else None,
                                       record.layout.get("workdir") if record else None)
    # Everything is checked, and every scheduler built, before anything is created.
    if args.on:
        plans = []
        for name in dict.fromkeys(n.strip() for n in args.on.split(",") if n.strip()):
            target = load_target(name)
            cfg, sw = software_on(target, record, args.allow_different_software)
            plans.append((target.name, get_scheduler(target.backend, cfg), sw))
    else:  # the run's own backend and its validated config, from its batch record
        plans = [(tags.get(T.TARGET) or rebuilder.scheduler(run).name, rebuilder.scheduler(run), "same")]
    recorded_env = next((r.env for r in (record.runs if record else []) if r.run_id == args.run_id), {})
    envs = [_project_env(run, project_dir, sched, recorded_env) for _t, sched, _sw in plans]
    params = dict(run.data.params)
    keep = {k: v for k, v in tags.items() if k.startswith(T.DET_PREFIX) or k in (T.CONFIG_HASH, T.SOFTWARE)}
    if args.sweep:
        keep[T.SWEEP] = args.sweep
    if note:
        print(note)
    import mlflow

    uri = args.tracking_uri or mlflow.get_tracking_uri()
    ids: list[str] = []
    for (target, scheduler, sw), (env, env_tags) in zip(plans, envs):
        specs = []
        for i in range(args.repeat):
            spec = make_spec(project_dir, entry, params, {**keep, **env_tags, T.RERUN_OF: args.run_id, T.REPEAT: str(i),
                                                          T.RERUN_SOFTWARE: T.short(sw)})
            spec.env = dict(env)
            specs.append(spec)
        got = submit_batch(client, scheduler, specs, project_dir, run.info.experiment_id, uri, target=target,
                           source=str(source))
        print(f"submitted {len(got)} rerun(s) of {args.run_id} to {target} as one batch"
              + ("" if sw == "same" else f" (software: {sw})"))
        ids += got
    if args.detach:
        for rid in ids:
            print(rid)
        return 0
    while True:
        runs = [client.get_run(r) for r in ids]
        if all(r.info.status in TERMINAL for r in runs):
            break
        sync_runs(client, [r for r in runs if r.info.status not in TERMINAL], replay=True, quiet=True)
        time.sleep(1.0)
    for r in runs:
        print(f"{r.info.run_id} {r.data.tags.get(T.TARGET, '')} {r.info.status}")
    import pandas as pd

    rows = [{"run_id": r.info.run_id, f"tags.{T.TARGET}": r.data.tags.get(T.TARGET),
             **{f"metrics.{k}": v for k, v in r.data.metrics.items()}} for r in [run, *runs]]
    primary = tags.get("repro.primary_metric") or next(iter(sorted(run.data.metrics)), None)
    for line in rerun_lines(pd.DataFrame(rows), args.run_id, [primary] if primary else []):
        print(line)
    print(f"the whole answer: repro analyze --rerun-of {args.run_id}")
    return 0 if all(r.info.status == FINISHED for r in runs) else 1


def register(sub) -> None:
    a = sub.add_parser("rerun", help="re-run a past run N times on its backend or on other targets: does it hold?",
                       description="Re-create a run made by a repro backend (same project files, entry point, "
                                   "parameters, repro.det.*, config hash and software), tagged repro.rerun_of=RUN_ID, "
                                   "on its own backend or on hardware targets (conf/hardware), and follow the reruns. "
                                   "What cannot be re-created faithfully is refused in one line before anything "
                                   "is created.")
    a.add_argument("run_id", metavar="RUN_ID")
    a.add_argument("--on", metavar="TARGET[,TARGET...]",
                   help="hardware targets to rerun on (conf/hardware names, e.g. slurm,osg_a100; default: the run's own)")
    a.add_argument("--repeat", type=int, default=1, help="reruns to make on each target (default 1)")
    a.add_argument("--sweep", help="tag the reruns repro.sweep=SWEEP (to analyse them with --sweep)")
    a.add_argument("--allow-different-software", action="store_true",
                   help="on a target that cannot run the original's interpreter or image, use the target's own "
                        "software (recorded in repro.rerun.software)")
    a.add_argument("--detach", action="store_true", help="submit and return; follow with `repro status`")
    a.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or MLflow's default)")
    a.set_defaults(func=_cmd_rerun)
