"""The batch record: what a submission wrote down, read by everything after it (stdlib only).

One JSON file per batch, `<batch workdir>/batch.json`, written once by `submit/batch.py:submit_batch`
after the scheduler accepted the batch; every run of the batch carries its path in the tag
`repro.record`. `repro sync`, `repro status`, `repro logs`, cancel, the sweep's watcher and
`ReproSubmittedRun.wait()` rebuild the batch's scheduler from it (`submit/rebuild.py`), never from
defaults. Version 1:

    {"schema": "repro-mlflow/batch-record", "version": 1, "created": "<UTC ISO time>",
     "scheduler": {"name": "slurm", "config": {<every field of the validated config dataclass>}},
     "tracking_uri": "...", "experiment_id": "...",
     "layout": {"workdir": <submit-side batch dir>, "job_dirs": <dir holding one dir per index>,
                "project": <the project as the jobs see it (staged copy, or the source)>,
                "source": <the project directory submitted>, "python": <interpreter of the jobs>},
     "worker": {"cwd": <where the command runs>, "run_dir": <the run's files, "{index}" filled in>,
                "env": {<common environment of the runs>}, "extra_tags": {<tag: "$VAR" template>},
                "requeue": <a SIGTERM may be a requeue>, "offline": <no mirror from the worker>},
     "runs": [{"index": 0, "run_id": "...", "job_id": "...", "entry_point": "main",
               "params": {...}, "attempt": 1, "command": "...", "env": {...}}, ...],
     "parts": [{"id": <array job id / cluster id>, "first": <index of its first run>, "count": n,
                "after": <the part it waits for, or null>}, ...]}

`parts` (optional, empty when the batch went in one submission) lists the submissions a scheduler split
a batch into (Slurm arrays over `MaxArraySize`, HTCondor clusters over `MAX_JOBS_PER_SUBMISSION`).

`worker` is what the one worker entry, `python -m repro_mlflow.runtime <record> <index>` (`job()`),
needs on the machine that runs the job. Its paths are as that machine sees them: absolute where the
jobs share the submit side's filesystem (local, Slurm), relative to the directory holding the record
where the record travels with the job (HTCondor's sandbox, an EC2 instance's work directory).

A record of another version, or one without a version (no such file was ever written without one:
whatever it is, it is not read as a record), is refused with one line (`RecordError`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "repro-mlflow/batch-record"
VERSION = 1
RECORD_FILE = "batch.json"


class RecordError(ValueError):
    """A batch record that cannot be read: missing, not JSON, of another version, or malformed (one line).

    Not a ReproError: this module stays stdlib only (no MLflow import), for the worker's start path."""


@dataclass
class RecordRun:
    """One run of a batch, as submitted."""

    index: int
    run_id: str
    job_id: str
    entry_point: str
    params: dict[str, str]
    attempt: int = 1
    command: str = ""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchRecord:
    """A batch as submitted: the scheduler and its full config, the runs, the file layout, the tracking URI."""

    scheduler: str
    config: dict[str, Any]
    tracking_uri: str
    experiment_id: str
    layout: dict[str, str]
    runs: list[RecordRun]
    created: str = ""
    version: int = VERSION
    worker: dict[str, Any] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)  # the submissions the batch was split into

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": self.version, "created": self.created,
                "scheduler": {"name": self.scheduler, "config": self.config},
                "tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                "layout": self.layout, "worker": self.worker, "runs": [vars(r) for r in self.runs],
                **({"parts": self.parts} if self.parts else {})}

    def run(self, run_id: str) -> RecordRun | None:
        """The entry of `run_id`, if it is in this batch."""
        return next((r for r in self.runs if r.run_id == run_id), None)


def write(path: str | Path, record: BatchRecord) -> Path:
    """Write the record atomically (a reader never sees half a file); return its path."""
    path = Path(path)
    if not record.created:
        record.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # its owner's alone (or the stricter umask)
    with os.fdopen(fd, "w") as f:
        f.write(_dumps(record.to_json()))
    os.replace(tmp, path)
    return path


def _dumps(data: dict[str, Any]) -> str:
    """The record as JSON, one key a line and one run a line: readable, and written by json's C encoder
    (an `indent` makes json use its pure-Python one, a second per 10,000 runs)."""
    def block(items: list[Any]) -> str:
        return "[\n" + ",\n".join("  " + json.dumps(x) for x in items) + "\n ]" if items else "[]"

    return "{\n" + ",\n".join(f" {json.dumps(k)}: {block(v) if k in ('runs', 'parts') else json.dumps(v)}"
                               for k, v in data.items()) + "\n}\n"


def read(path: str | Path) -> BatchRecord:
    """The record at `path`, validated; a one-line `RecordError` when it cannot be read as version 1."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"batch record {path} not found") from None
    except (OSError, ValueError) as e:
        raise RecordError(f"batch record {path} is not readable JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "version" not in data:
        raise RecordError(f"{path} has no batch-record schema version (written by an older repro-mlflow?); "
                          "it is not read: resubmit the batch")
    if data["version"] != VERSION:
        raise RecordError(f"batch record {path} has version {data['version']!r}; this repro-mlflow reads version {VERSION}")
    try:
        sched, runs = data["scheduler"], data["runs"]
        record = BatchRecord(
            scheduler=_str(sched["name"], "scheduler.name"), config=_dict(sched["config"], "scheduler.config"),
            tracking_uri=_str(data["tracking_uri"], "tracking_uri"), experiment_id=_str(data["experiment_id"], "experiment_id"),
            layout=_dict(data["layout"], "layout"), created=str(data.get("created", "")),
            worker=_dict(data.get("worker") or {}, "worker"),
            parts=[_dict(p, "parts") for p in _list(data.get("parts") or [], "parts")],
            runs=[RecordRun(index=_int(r["index"], "runs.index"), run_id=_str(r["run_id"], "runs.run_id"),
                            job_id=_str(r["job_id"], "runs.job_id"), entry_point=_str(r["entry_point"], "runs.entry_point"),
                            params=_dict(r["params"], "runs.params"), attempt=_int(r.get("attempt", 1), "runs.attempt"),
                            command=str(r.get("command", "")), env=_dict(r.get("env") or {}, "runs.env"))
                  for r in _list(runs, "runs")])
    except KeyError as e:
        raise RecordError(f"batch record {path} lacks {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise RecordError(f"batch record {path}: {e}") from None
    return record


@dataclass
class Job:
    """Entry `index` of a batch as the worker runs it, its paths resolved on the machine it runs on."""

    index: int
    run_id: str
    command: str
    cwd: Path
    run_dir: Path  # output.log, status.json, offline/ (the run's local store)
    env: dict[str, str]  # what the record adds to the worker's environment for the command
    extra_tags: dict[str, str]
    requeue: bool
    offline: bool


def job(path: str | Path, index: int) -> Job:
    """Entry `index` of the record at `path`; a one-line `RecordError` when there is none."""
    rec = read(path)
    run = next((r for r in rec.runs if r.index == index), None)
    if run is None:
        raise RecordError(f"batch record {path} has no run of index {index} ({len(rec.runs)} runs)")
    w = rec.worker
    base = Path(path).resolve().parent  # relative paths are relative to the record (it travels with the job)
    cwd = base / str(w.get("cwd") or rec.layout.get("project") or ".")
    run_dir = base / str(w.get("run_dir") or str(Path(rec.layout.get("job_dirs") or ".") / "{index}")).replace(
        "{index}", str(index))
    env = {"MLFLOW_TRACKING_URI": rec.tracking_uri, "MLFLOW_EXPERIMENT_ID": rec.experiment_id,
           **{str(k): str(v) for k, v in _dict(w.get("env") or {}, "worker.env").items()},
           **{str(k): str(v) for k, v in run.env.items()}}
    return Job(index, run.run_id, run.command, cwd, run_dir, env,
               {str(k): str(v) for k, v in _dict(w.get("extra_tags") or {}, "worker.extra_tags").items()},
               bool(w.get("requeue", False)), bool(w.get("offline", False)))


def expand_tags(templates: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Tag values with `$VAR`/`${VAR}` filled from `environ`; a tag whose variable is unset is left out."""
    out: dict[str, str] = {}
    for key, template in templates.items():
        missing = False

        def sub(m: re.Match[str]) -> str:
            nonlocal missing
            name = m.group(1) or m.group(2)
            if name not in environ:
                missing = True
                return ""
            return environ[name]

        value = re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, str(template))
        if not missing and value != "":
            out[key] = value
    return out


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{what} must be a string, got {v!r}")
    return v


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{what} must be an integer, got {v!r}")
    return v


def _dict(v: Any, what: str) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"{what} must be an object, got {type(v).__name__}")
    return v


def _list(v: Any, what: str) -> list:
    if not isinstance(v, list):
        raise ValueError(f"{what} must be a list, got {type(v).__name__}")
    return v


__all__ = ["BatchRecord", "Job", "RECORD_FILE", "RecordError", "RecordRun", "SCHEMA", "VERSION", "expand_tags", "job",
           "read", "write"]
