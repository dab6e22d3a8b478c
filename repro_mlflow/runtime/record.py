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
     "runs": [{"index": 0, "run_id": "...", "job_id": "...", "entry_point": "main",
               "params": {...}, "attempt": 1, "command": "...", "env": {...}}, ...]}

A record of another version, or one without a version (no such file was ever written without one:
whatever it is, it is not read as a record), is refused with one line (`RecordError`).
"""

from __future__ import annotations

import json
import os
import time
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

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": self.version, "created": self.created,
                "scheduler": {"name": self.scheduler, "config": self.config},
                "tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                "layout": self.layout, "runs": [vars(r) for r in self.runs]}

    def run(self, run_id: str) -> RecordRun | None:
        """The entry of `run_id`, if it is in this batch."""
        return next((r for r in self.runs if r.run_id == run_id), None)


def write(path: str | Path, record: BatchRecord) -> Path:
    """Write the record atomically (a reader never sees half a file); return its path."""
    path = Path(path)
    if not record.created:
        record.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, sort_keys=False))
    os.replace(tmp, path)
    return path


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


__all__ = ["BatchRecord", "RECORD_FILE", "RecordError", "RecordRun", "SCHEMA", "VERSION", "read", "write"]
