"""Plan a sweep: each job's `repro` node becomes a `PlannedRun` with its checked parameters and config hash.

config_hash = hash(entry point, every parameter's effective value, software) — without repeat and
without target, so one config can be compared across targets and repeats.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tags as T
from ..submit.factors import check as check_factors
from ..schedulers import scheduler_class
from ..submit.factors import local_gpu
from ..submit.project import check_params, hash_config, load_entry_points
from ..schedulers.protocol import RunSpec
from ..errors import ReproError
from ..envs.software import Software

ROOT = Path(__file__).resolve().parents[2]
_TARGET_KEYS = {"name", "backend", "gpu", "cpu_arch", "container", "backend_config"}
_JOB_KEYS = {"entry_point", "params", "common_params", "factors", "repeat", "target", "software",
             "project_dir", "experiment", "tracking_uri", "sweep"}


@dataclass(frozen=True)
class Target:
    """A `hardware/` entry (schema in docs/architecture.md)."""

    name: str
    backend: str
    backend_config: tuple = ()  # sorted (key, JSON of the value) pairs: hashable even with list values (microarch)
    container: str | None = None
    gpu: str | None = None
    cpu_arch: str | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> Target:
        d = dict(d or {"name": "local", "backend": "local"})
        unknown = set(d) - _TARGET_KEYS
        if unknown:
            raise ReproError(f"hardware target {d.get('name') or '?'}: unknown key(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(_TARGET_KEYS))})")
        for key in ("name", "backend"):
            if not d.get(key):
                raise ReproError(f"hardware target {d.get('name') or '?'}: '{key}' is required")
        from ..schedulers import SCHEDULERS

        if d["backend"] not in SCHEDULERS:
            raise ReproError(f"hardware target {d['name']}: unknown backend '{d['backend']}' (known: {', '.join(sorted(SCHEDULERS))})")
        bc = d.get("backend_config") or {}
        if not isinstance(bc, dict):
            raise ReproError(f"hardware target {d['name']}: backend_config must be a mapping")
        items = tuple(sorted((str(k), json.dumps(v, sort_keys=True)) for k, v in bc.items()))
        return cls(str(d["name"]), str(d["backend"]), items, d.get("container") or None,
                   d.get("gpu") or None, d.get("cpu_arch") or None)

    def config(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.backend_config}


@dataclass
class PlannedRun:
    """One run of the sweep, before it exists in MLflow."""

    entry_point: str
    params: dict[str, str]
    command: str
    target: Target
    software: Software
    repeat: int
    config_hash: str
    project_dir: Path
    experiment: str
    tracking_uri: str
    sweep: str | None
    overrides: tuple[str, ...] = ()
    skipped_factors: tuple[str, ...] = ()
    unused_params: tuple[str, ...] = ()  # common params (params.X) the entry point does not declare
    declared: tuple[str, ...] = ()  # the entry point's parameters
    env: dict[str, str] = field(default_factory=dict)  # the project's declared environment (PATH, VIRTUAL_ENV)
    env_tags: dict[str, str] = field(default_factory=dict)  # repro.env.* tags saying which

    @property
    def key(self) -> tuple[str, str, str]:
        """What resume matches on: (config hash, repeat, target)."""
        return (self.config_hash, str(self.repeat), self.target.name)

    def spec(self, sweep: str, attempt: int = 1) -> RunSpec:
        tags = {
            T.SWEEP: sweep, T.CONFIG_HASH: self.config_hash, T.REPEAT: str(self.repeat),
            T.TARGET: self.target.name, T.SOFTWARE: self.software.name, T.ATTEMPT: str(attempt),
            "mlflow.runName": f"{self.entry_point}-{self.config_hash[:6]}-r{self.repeat}-{self.target.name}",
        }
        if self.software.image or self.target.container:
            tags[T.CONTAINER] = T.short(self.software.image or self.target.container)
        return RunSpec(self.entry_point, dict(self.params), self.command, {**self.env_tags, **tags}, dict(self.env))


def config_hash(entry_point: str, params: dict[str, str], software: Software) -> str:
    """Short stable hash of what defines a config: entry point, effective params, software."""
    return hash_config(entry_point, params, software.identity())


def default_project_dir() -> Path:
    """The current directory when it holds an MLproject, else the bundled examples (this repository)."""
    cwd = Path.cwd()
    return cwd if (cwd / "MLproject").is_file() else ROOT


class Planner:
    """Turns job dicts into PlannedRuns; reads each MLflow project once."""

    def __init__(self) -> None:
        self._projects: dict[Path, tuple[dict, Any]] = {}
        self._dirs: dict[str | None, Path] = {}

    def _resolve(self, project_dir: str | None) -> Path:
        if project_dir not in self._dirs:
            self._dirs[project_dir] = Path(project_dir or default_project_dir()).resolve()
        return self._dirs[project_dir]

    def _project(self, project_dir: Path) -> tuple[dict, Any]:
        if project_dir not in self._projects:
            from mlflow.projects._project_spec import load_project

            if not project_dir.is_dir():
                raise ReproError(f"project_dir {project_dir} is not a directory")
            self._projects[project_dir] = (load_entry_points(project_dir), load_project(str(project_dir)))
        return self._projects[project_dir]

    def plan_job(self, job: dict, overrides: Sequence[str] = ()) -> PlannedRun:
        unknown = set(job) - _JOB_KEYS
        if unknown:
            raise ReproError(f"unknown key(s) in the run description: {', '.join(sorted(unknown))} (known: {', '.join(sorted(_JOB_KEYS))})")
        ep = job.get("entry_point")
        if not ep:
            raise ReproError("the run description has no entry_point")
        project_dir = self._resolve(job.get("project_dir"))
        entry_points, project = self._project(project_dir)
        if ep not in entry_points:
            raise ReproError(f"unknown entry point '{ep}' (the project {project_dir} has: {', '.join(sorted(entry_points)) or 'none'})")
        declared = entry_points[ep].get("parameters") or {}
        params: dict[str, Any] = {}
        for k, v in (job.get("params") or {}).items():
            if v is None:
                continue
            if k not in declared:
                raise ReproError(f"{ep}: '{k}' is not a parameter of this entry point (it has: {', '.join(declared) or 'none'})")
            params[k] = v
        skipped, unused = [], []
        for group in ("common_params", "factors"):
            for k, v in (job.get(group) or {}).items():
                if v is None:
                    continue
                if k in declared:
                    params[k] = v
                elif group == "factors":
                    skipped.append(k)
                else:
                    unused.append(k)
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        checked = check_params(ep, declared, params)
        command = project.get_entry_point(ep).compute_command(checked, None)
        software = Software.from_dict(job.get("software"))
        target = Target.from_dict(job.get("target"))
        cls = scheduler_class(target.backend)
        check_factors(ep, entry_points[ep], checked, gpu=bool(target.gpu) or bool(cls and cls.runs_here and local_gpu()))
        try:
            repeat = int(job.get("repeat") or 0)
        except (TypeError, ValueError):
            raise ReproError(f"repeat must be a non-negative integer, got {job.get('repeat')!r}") from None
        if repeat < 0:
            raise ReproError(f"repeat must be a non-negative integer, got {repeat}")
        return PlannedRun(
            entry_point=ep, params=checked, command=command, target=target, software=software, repeat=repeat,
            config_hash=config_hash(ep, checked, software), project_dir=project_dir,
            experiment=str(job.get("experiment") or "Default"), tracking_uri=job.get("tracking_uri") or "",
            sweep=job.get("sweep") or None, overrides=tuple(overrides), skipped_factors=tuple(skipped),
            unused_params=tuple(unused), declared=tuple(declared),
        )


@dataclass
class Plan:
    """The planned runs of a sweep, de-duplicated, with the sweep-level settings they share."""

    runs: list[PlannedRun]
    sweep: str
    experiment: str
    tracking_uri: str
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)

    def groups(self) -> dict[tuple[Target, Software], list[PlannedRun]]:
        """One batch per target (and software env, which sets the batch's interpreter)."""
        out: dict[tuple[Target, Software], list[PlannedRun]] = {}
        for r in self.runs:
            out.setdefault((r.target, r.software), []).append(r)
        return out


def build_plan(runs: Iterable[PlannedRun]) -> Plan:
    """Check the runs agree on sweep-level settings, drop duplicates, name the sweep."""
    runs = list(runs)
    if not runs:
        raise ReproError("empty sweep: no runs to plan")
    for attr in ("experiment", "tracking_uri", "sweep", "project_dir"):
        values = {getattr(r, attr) for r in runs}
        if len(values) > 1:
            raise ReproError(f"conflicting overrides: one sweep needs one {attr}, got {', '.join(sorted(map(str, values)))}")
    nowhere = set.intersection(*(set(r.unused_params) for r in runs))
    if nowhere:
        takes = "; ".join(sorted({f"{r.entry_point} takes {', '.join(r.declared) or 'none'}" for r in runs}))
        raise ReproError(f"params.{sorted(nowhere)[0]} is a parameter of no entry point of this sweep ({takes})")
    seen: dict[tuple, PlannedRun] = {}
    for r in runs:
        seen.setdefault(r.key, r)
    unique = list(seen.values())
    notes = []
    skipped = sorted({(r.entry_point, f) for r in runs for f in r.skipped_factors})
    for ep, f in skipped:
        notes.append(f"{ep} does not take '{f}': not passed to it")
    names = sorted("|".join(k) for k in seen)
    sweep = runs[0].sweep or "sweep-" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]
    if any(c in sweep for c in T.UNQUOTABLE):  # `repro status/sync --sweep` could not select its runs
        raise ReproError(f"sweep name {sweep!r}: no quotes, backslashes or line breaks (MLflow's search filter cannot quote them)")
    return Plan(unique, sweep, runs[0].experiment, runs[0].tracking_uri, len(runs) - len(unique), notes)
