"""`python -m repro_mlflow.runtime [--run-id ID] -- COMMAND...`

Starts the entry point command at once, and while it runs captures the fingerprint and writes it
to the run (tags + `repro/fingerprint.json`), so MLflow's import and store work stay off the
command's critical path. When the command ends, the run ends FINISHED, FAILED (with
`repro.status_reason`) or KILLED (on SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import tags as T
from ..fingerprint import capture, to_tags


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m repro_mlflow.runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-id", default=os.environ.get("MLFLOW_RUN_ID"), help="MLflow run to report to (default: $MLFLOW_RUN_ID)")
    p.add_argument("--log-file", default=os.environ.get("REPRO_LOG_FILE"), help="command output file to attach as the artifact repro/output.log")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the entry point command (after --); one argument runs through the shell")
    args = p.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        p.error("no command given (put it after --)")
    if not args.run_id:
        p.error("no run id: pass --run-id or set MLFLOW_RUN_ID")
    return args


class _Reporter(threading.Thread):
    """Fingerprint + MLflow writes, off the command's critical path."""

    def __init__(self, run_id: str):
        super().__init__(daemon=True)
        self.run_id = run_id
        self.error: BaseException | None = None
        self.client = None

    def run(self) -> None:
        try:
            record = capture()
            from mlflow.tracking import MlflowClient  # slow import, kept in this thread
            from mlflow.entities import RunTag

            self.client = MlflowClient()
            tag_list = [RunTag(k, v) for k, v in to_tags(record).items()]
            self.client.log_batch(self.run_id, tags=tag_list)
            self.client.log_dict(self.run_id, record, T.FINGERPRINT_ARTIFACT)
        except BaseException as e:  # noqa: BLE001 - reported after the command ends
            self.error = e


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    env = dict(os.environ, MLFLOW_RUN_ID=args.run_id)
    cmd = args.command
    shell = len(cmd) == 1
    proc = subprocess.Popen(cmd[0] if shell else cmd, shell=shell, env=env)
    reporter = _Reporter(args.run_id)
    reporter.start()

    stopped: list[int] = []

    def _forward(signum, _frame):
        stopped.append(signum)
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, _forward)

    rc = proc.wait()
    reporter.join()
    _finish(reporter, args, rc, stopped)
    return rc


def _finish(reporter: _Reporter, args: argparse.Namespace, rc: int, stopped: list[int]) -> None:
    from mlflow.tracking import MlflowClient

    client = reporter.client or MlflowClient()
    if stopped:
        status, reason = "KILLED", f"stopped by signal {signal.Signals(stopped[0]).name}"
    elif rc == 0:
        status, reason = "FINISHED", None
    else:
        status = "FAILED"
        reason = f"exit code {rc}" if rc > 0 else f"killed by signal {signal.Signals(-rc).name}"
    if reporter.error is not None:
        print(f"repro runtime: could not record the fingerprint: {reporter.error}", file=sys.stderr)
    if reason:
        client.set_tag(args.run_id, T.STATUS_REASON, T.short(reason))
    if args.log_file and Path(args.log_file).is_file():
        try:
            client.log_artifact(args.run_id, args.log_file, artifact_path=Path(T.LOG_ARTIFACT).parent.as_posix())
        except Exception as e:  # noqa: BLE001
            print(f"repro runtime: could not attach the log: {e}", file=sys.stderr)
    client.set_terminated(args.run_id, status, end_time=int(time.time() * 1000))


def wrap(command: str, run_id: str, python: str | None = None) -> list[str]:
    """The argv that runs `command` (a shell string) under this runtime."""
    return [python or sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--", command]


__all__ = ["main", "wrap"]
