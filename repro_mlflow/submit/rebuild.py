"""A run's scheduler, rebuilt from its batch record (`runtime/record.py`), never from defaults.

Every caller after submission (`repro sync`, `repro status`, `repro logs`, cancel, the sweep's
watcher, `ReproSubmittedRun.wait()`) goes through `Rebuilder`: it reads each record once (the path
is the run's `repro.record` tag), builds one scheduler per distinct (name, config), and says why it
could not (a record refused in one line). A run submitted before records existed (no tag) gets its
backend's default config, and the caller is told so once (`legacy`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import tags as T
from ..runtime import record as R
from ..schedulers import get_scheduler
from ..schedulers.protocol import SchedulerBase

if TYPE_CHECKING:
    from mlflow.entities import Run


class Rebuilder:
    """Schedulers of runs, from their batch records; cached per record file and per (name, config)."""

    def __init__(self) -> None:
        self._records: dict[str, R.BatchRecord] = {}
        self._schedulers: dict[tuple[str, str], Any] = {}
        self.legacy: set[str] = set()  # backends of runs without a record (default config used)

    def record(self, run: Run) -> R.BatchRecord | None:
        """The run's batch record (None for a run submitted before records existed); RecordError if refused."""
        path = run.data.tags.get(T.RECORD)
        if not path:
            return None
        if path not in self._records:
            rec = R.read(path)
            if run.data.tags.get(T.BACKEND) not in (None, rec.scheduler):
                raise R.RecordError(f"batch record {path} is of scheduler {rec.scheduler}, "
                                    f"the run's backend is {run.data.tags.get(T.BACKEND)}")
            self._records[path] = rec
        return self._records[path]

    def key(self, run: Run) -> tuple[str, str]:
        """(scheduler name, its config as canonical JSON): runs with the same key share one scheduler (one poll)."""
        rec = self.record(run)
        if rec is None:
            return run.data.tags.get(T.BACKEND, ""), ""
        return rec.scheduler, json.dumps(rec.config, sort_keys=True)

    def scheduler(self, run: Run) -> SchedulerBase:
        """The scheduler of the run's batch, built from the record's config (validated again)."""
        name, config = self.key(run)
        if (name, config) not in self._schedulers:
            if not config:
                self.legacy.add(name)
            self._schedulers[(name, config)] = get_scheduler(name, json.loads(config) if config else {})
        return self._schedulers[(name, config)]


def legacy_note(backends: set[str]) -> str | None:
    """The one line that says runs without a batch record were handled with default configs."""
    if not backends:
        return None
    return (f"note: run(s) of {', '.join(sorted(backends))} have no batch record (submitted by an older "
            "repro-mlflow): polled with the default config")


def scheduler_of(run: Run) -> SchedulerBase:
    """The scheduler of one run, from its batch record."""
    return Rebuilder().scheduler(run)


__all__ = ["Rebuilder", "legacy_note", "scheduler_of"]
