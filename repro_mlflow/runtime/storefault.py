"""A local store that cannot be written (a read-only or full filesystem): said once, counted, never a false FINISHED.

The entry point's store (`runtime/localfirst.py`) takes MLflow's SQL error on a write, says it once on
stderr (the job's output.log) with the store's path and the cause, and from then on drops the run's
writes without trying again (the project is neither stopped nor slowed; a full disk is not retried
per call). It tells the worker through a pipe the worker opened for it (`FD_VAR`, no file: the
filesystem is what failed): the cause and how many logging calls were not kept. The worker then ends
the run FAILED (or its own state, if not FINISHED) with `repro.status_reason` saying so (`reason`).

Stdlib only.
"""

from __future__ import annotations

import os
import sqlite3

FD_VAR = "REPRO_STORE_FAULT_FD"

# what SQLite (or the OS) says when the store's filesystem refuses a write
_CAUSES = ("readonly", "read-only", "disk is full", "no space left", "unable to open database file", "disk i/o error",
           "quota")


def store_cause(e: BaseException) -> str | None:
    """The one-line cause if `e` (or what it wraps) is the store's filesystem refusing a write, else None."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (sqlite3.OperationalError, OSError)) or type(cur).__name__ == "OperationalError":
            if isinstance(cur, OSError) and cur.strerror:  # without the file name (the store's path is said)
                text = [f"[Errno {cur.errno}] {cur.strerror}"]
            else:
                text = str(getattr(cur, "orig", None) or cur).strip().splitlines()
            line = text[0] if text else type(cur).__name__
            if any(c in line.lower() for c in _CAUSES):
                return line.removeprefix("(sqlite3.OperationalError) ")[:200]
        cur = cur.__cause__ or cur.__context__
    return None


class Reporter:
    """The entry point's side: say the fault once, count the writes dropped, tell the worker (if it listens)."""

    def __init__(self, path: str, environ: dict[str, str] | os._Environ[str] = os.environ):
        self.path = path
        self.cause: str | None = None
        self.dropped = 0
        try:
            self._fd: int | None = int(environ[FD_VAR])
            os.set_blocking(self._fd, False)  # a full pipe never blocks the project
        except (KeyError, ValueError, OSError):
            self._fd = None

    def failed(self, cause: str) -> None:
        """One write the store refused (`cause`): said the first time; counted."""
        import sys  # noqa: PLC0415

        if self.cause is None:
            self.cause = cause
            print(f"repro runtime: the local store {self.path} cannot be written ({cause}); what the run logs from "
                  "now on is not kept (said once)", file=sys.stderr, flush=True)
        self.dropped += 1
        if self._fd is not None:
            try:
                os.write(self._fd, f"{self.dropped}\t{self.cause}\n".encode())
            except OSError:  # the worker is gone, or the pipe is full: the count it has is a lower bound
                pass


def collect(fd: int) -> tuple[str | None, int]:
    """The worker's side, once the command ended: (cause, logging calls not kept) read from the pipe `fd`."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:  # a child of the command still holds the pipe open: what was written is here
        pass
    cause, dropped = None, 0
    for line in data.decode(errors="replace").splitlines():
        n, _, text = line.partition("\t")
        if n.isdigit():
            dropped, cause = max(dropped, int(n)), cause or text
    return cause, dropped


class _Filter:
    """Drops MLflow's traceback for a write the store's filesystem refused (said once, here, instead)."""

    def filter(self, record) -> bool:
        return not (record.exc_info and record.exc_info[1] is not None and store_cause(record.exc_info[1]))


def quiet_mlflow() -> None:
    """No traceback per refused write from MLflow's SQL store (`mlflow.store.db.utils` logs one each)."""
    import logging  # noqa: PLC0415

    log = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _Filter) for f in log.filters):
        log.addFilter(_Filter())


def reason(path: str, cause: str, dropped: int, reason_before: str | None) -> str:
    """The run's `repro.status_reason` when `dropped` logging calls could not be kept."""
    said = (f"local store {path} could not be written ({cause}): {dropped} logging call(s) of the run not kept")
    return f"{reason_before}; {said}" if reason_before else said


__all__ = ["FD_VAR", "Reporter", "collect", "quiet_mlflow", "reason", "store_cause"]
