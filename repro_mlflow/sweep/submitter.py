"""The sweep's submission, in a second process started before Hydra composes anything.

Importing MLflow's client and SQL store (SQLAlchemy, alembic) takes over a second of CPU that no
thread can overlap with Hydra's composition and the plan (imports hold the GIL). `repro-sweep` therefore
starts this child first: it imports what the submission needs while the parent composes and plans, then
waits on its stdin for one request (pickled: the plan, the software envs' pythons, `force`, the parent's
environment and directory), runs `submit_plan` exactly as the parent would (its progress lines go to the
same stderr), and answers on its stdout: the `Submission`, or the error as one line. It is not started
for a dry run or `--help`; after bad input `repro-sweep` stops it before it has done anything.

`REPRO_SWEEP_SERIAL=1` submits in the parent instead, as does a parent that could not start the child.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import traceback
from typing import Any

from ..errors import ReproError
from ..quickexit import end_program

SERIAL_VAR = "REPRO_SWEEP_SERIAL"
_child: Submitter | None = None


class SubmitError(Exception):
    """The child's submission failed other than with a ReproError (its one line)."""


class Submitter:
    """The child process, seen from `repro-sweep`."""

    def __init__(self) -> None:
        # In a session of its own, a terminal's Ctrl-C reaches only repro-sweep, which stops an idle child and
        # passes the interrupt on to a submitting one (the child never prints a trace of its own).
        self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True)

    def submit(self, plan: Any, pythons: dict, force: bool, scheds: dict | None) -> Any:
        """`submit_plan(client, plan, pythons, force)` in the child; its Submission, or its error raised here."""
        try:
            payload = pickle.dumps(scheds)  # the parent's checked schedulers, if they travel (else rebuilt there)
        except Exception:  # noqa: BLE001 - e.g. a boto3 client: the child builds its own
            payload = None
        request = {"plan": plan, "pythons": pythons, "force": force, "scheds": payload,
                   "environ": dict(os.environ), "cwd": os.getcwd()}
        try:
            self.proc.stdin.write(pickle.dumps(request))
            self.proc.stdin.close()
        except BrokenPipeError:  # the child died: its missing answer says so
            pass
        try:
            out = self.proc.stdout.read()  # the answer ends when the child closes it, before its interpreter's teardown
        except KeyboardInterrupt:  # interrupted mid-submission: the child stops as this process would have
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait()
            raise
        self.proc.stdout.close()
        try:
            kind, value = pickle.loads(out)
        except Exception:  # noqa: BLE001 - the child died without answering (killed, out of memory)
            raise SubmitError(f"the submitting process ended with exit code {self.proc.wait()} "
                              "before answering") from None
        if kind == "ok":
            return value
        raise (ReproError if kind == "repro" else SubmitError)(value)

    def close(self) -> None:
        """Stop a child that has nothing to do."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start() -> None:
    """Start the child (once), unless REPRO_SWEEP_SERIAL=1; a child that cannot start leaves the parent to submit."""
    global _child
    if _child is None and os.environ.get(SERIAL_VAR) != "1":
        try:
            _child = Submitter()
        except OSError:
            _child = None


def take() -> Submitter | None:
    """The started child, handed over once (None: submit in this process)."""
    global _child
    child, _child = _child, None
    return child


def stop() -> None:
    """Stop a child that was not used (the parent exits without submitting)."""
    child = take()
    if child is not None:
        child.close()


def _serve() -> int:
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed here goes to stderr, never into the answer
    try:
        from ..mlflow_sql import import_store

        import_store(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:"))  # MLflow 3's default store is sqlite
        from ..submit import sync  # noqa: F401 - the submission's own modules, imported before the request
        from .submit import submit_here

        data = sys.stdin.buffer.read()
        if not data:
            return 0
        req = pickle.loads(data)
        os.environ.clear()
        os.environ.update(req["environ"])
        os.chdir(req["cwd"])
        scheds = pickle.loads(req["scheds"]) if req["scheds"] else None
        result: tuple[str, Any] = ("ok", submit_here(req["plan"], req["pythons"], req["force"], scheds))
    except KeyboardInterrupt:  # Ctrl-C reaches both processes: repro-sweep says it, not this one
        return 130
    except ReproError as e:
        result = ("repro", str(e))
    except Exception as e:  # noqa: BLE001 - reported on one line by the parent, in full here when asked
        from .report import full_error, one_line

        if full_error():
            traceback.print_exc()
        result = ("error", one_line(e))
    try:
        answer.write(pickle.dumps(result))
        answer.close()
    except BrokenPipeError:  # repro-sweep is gone (interrupted): what was submitted stays submitted
        return 1
    return 0


if __name__ == "__main__":
    end_program(_serve())  # committed and answered: MLflow's and SQLAlchemy's teardown would only cost time
