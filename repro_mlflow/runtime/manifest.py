"""One run of a batch manifest: how a cluster job (a Slurm array task, an HTCondor proc) finds its run.

A manifest is the JSON file a scheduler writes once per batch:

    {"cwd": "<staged project>", "env": {...common...}, "rundir": "<batch job dir>",
     "extra_tags": {"repro.slurm.job_id": "${SLURM_JOB_ID}", ...}, "requeue": false,
     "runs": [{"run_id": "...", "command": "...", "env": {...}}, ...]}

`python -m repro_mlflow.runtime --manifest FILE --index I` runs entry I with, unless already set,
`REPRO_OFFLINE_DIR=<rundir>/<I>/offline`, `REPRO_LOG_FILE=<rundir>/<I>/output.log` and
`REPRO_STATUS_FILE=<rundir>/<I>/status.json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ManifestRun:
    run_id: str
    command: str
    cwd: str | None
    env: dict[str, str] = field(default_factory=dict)
    extra_tags: dict[str, str] = field(default_factory=dict)
    requeue: bool = False  # the scheduler may requeue the job: a requeue's SIGTERM is not a kill


def load(path: str | Path, index: int) -> ManifestRun:
    """Entry `index` of the manifest at `path`, its environment completed with the per-run files."""
    m = json.loads(Path(path).read_text())
    runs = m["runs"]
    if not 0 <= index < len(runs):
        raise SystemExit(f"repro runtime: index {index} is not in the manifest ({len(runs)} runs)")
    run = runs[index]
    env = {**(m.get("env") or {}), **(run.get("env") or {})}
    rundir = Path(m.get("rundir") or Path(path).parent) / str(index)
    defaults = {"REPRO_OFFLINE_DIR": rundir / "offline", "REPRO_LOG_FILE": rundir / "output.log",
                "REPRO_STATUS_FILE": rundir / "status.json"}
    for key, value in defaults.items():
        env.setdefault(key, os.environ.get(key) or str(value))
    return ManifestRun(run["run_id"], run["command"], m.get("cwd"), env, dict(m.get("extra_tags") or {}),
                       bool(m.get("requeue", False)))


def expand_tags(templates: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """Tag values with `$VAR`/`${VAR}` filled from `environ`; a tag whose variable is unset is left out."""
    out: dict[str, str] = {}
    for key, template in templates.items():
        value = _expand(str(template), environ)
        if value is not None and value != "":
            out[key] = value
    return out


def _expand(template: str, environ: dict[str, str]) -> str | None:
    import re

    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1) or m.group(2)
        if name not in environ:
            missing = True
            return ""
        return environ[name]

    value = re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, template)
    return None if missing else value
