"""`python -m repro_mlflow.runtime [--run-id ID] -- COMMAND...`
   `python -m repro_mlflow.runtime --manifest FILE --index I`

Starts the entry point command at once, and while it runs captures the fingerprint and writes it
to the run (tags + `repro/fingerprint.json`), so MLflow's import and store work stay off the
command's critical path. When the command ends, the run ends FINISHED, FAILED (with
`repro.status_reason`) or KILLED (on SIGTERM/SIGINT).

Offline results: if the tracking store cannot be reached and `REPRO_OFFLINE_DIR` is set (or
`REPRO_OFFLINE=1`), everything (the command's own logging included) goes to an MLflow file store in
`$REPRO_OFFLINE_DIR`, with `bundle.json` naming the real run; `repro sync` replays it.

Extra tags: `REPRO_EXTRA_TAGS` (a JSON object; `$VAR` in values is filled from the environment,
tags whose variables are unset are left out) and a manifest's `extra_tags` are written with the
fingerprint. `REPRO_STATUS_FILE`, when set, receives `{"rc", "status", "reason", "end_time"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import tags as T
from . import manifest as M
from . import offline
from .reason import explain


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m repro_mlflow.runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-id", default=os.environ.get("MLFLOW_RUN_ID"), help="MLflow run to report to (default: $MLFLOW_RUN_ID)")
    p.add_argument("--log-file", default=os.environ.get("REPRO_LOG_FILE"), help="command output file to attach as the artifact repro/output.log")
    p.add_argument("--manifest", help="batch manifest (JSON) to take the run id, command and environment from")
    p.add_argument("--index", type=int, help="entry of --manifest to run")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the entry point command (after --); one argument runs through the shell")
    args = p.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    args.extra_tags = {}
    if args.manifest is not None:
        if args.index is None:
            p.error("--manifest needs --index")
        entry = M.load(args.manifest, args.index)
        os.environ.update(entry.env)
        if entry.cwd:
            os.chdir(entry.cwd)
        args.run_id, args.command, args.extra_tags = entry.run_id, [entry.command], entry.extra_tags
        args.log_file = os.environ.get("REPRO_LOG_FILE")
    if not args.command:
        p.error("no command given (put it after --)")
    if not args.run_id:
        p.error("no run id: pass --run-id or set MLFLOW_RUN_ID")
    extra = os.environ.get("REPRO_EXTRA_TAGS")
    if extra:
        try:
            args.extra_tags = {**args.extra_tags, **json.loads(extra)}
        except ValueError:
            print("repro runtime: REPRO_EXTRA_TAGS is not a JSON object; ignored", file=sys.stderr)
    return args


class _Reporter(threading.Thread):
    """Fingerprint + MLflow writes, off the command's critical path."""

    def __init__(self, run_id: str, tracking_uri: str | None, extra_tags: dict[str, str], environ: dict[str, str]):
        super().__init__(daemon=True)
        self.run_id, self.tracking_uri, self.extra_tags = run_id, tracking_uri, extra_tags
        # A snapshot taken before mlflow is imported: MLflow's telemetry thread edits os.environ
        # while it runs, and iterating os.environ then raises.
        self.environ = environ
        self.error: BaseException | None = None
        self.client = None

    def run(self) -> None:
        try:
            from ..fingerprint import capture, to_tags  # off the path to the command's start

            record = capture(self.environ)
            from mlflow.tracking import MlflowClient  # slow import, kept in this thread
            from mlflow.entities import RunTag

            self.client = MlflowClient(self.tracking_uri)
            tags = {**to_tags(record), **M.expand_tags(self.extra_tags, self.environ)}
            self.client.log_batch(self.run_id, tags=[RunTag(k, T.short(v)) for k, v in tags.items()])
            if self.client.get_run(self.run_id).info.status == "SCHEDULED":
                self.client.update_run(self.run_id, status="RUNNING")
            self.client.log_dict(self.run_id, record, T.FINGERPRINT_ARTIFACT)
        except BaseException as e:  # noqa: BLE001 - reported after the command ends
            self.error = e


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    snapshot = dict(os.environ)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    offline_dir = os.environ.get("REPRO_OFFLINE_DIR")
    run_id, env = args.run_id, dict(os.environ, MLFLOW_RUN_ID=args.run_id)
    args.offline = None
    if offline.wants_offline(tracking_uri, offline_dir):
        if not offline_dir:
            print("repro runtime: REPRO_OFFLINE=1 needs REPRO_OFFLINE_DIR", file=sys.stderr)
            return 2
        print(f"repro runtime: tracking store {tracking_uri} not reachable; logging offline to {offline_dir}", file=sys.stderr)
        tracking_uri, run_id = offline.start(offline_dir, args.run_id, tracking_uri)
        env.update(MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_RUN_ID=run_id,
                   MLFLOW_EXPERIMENT_ID=offline.OFFLINE_EXPERIMENT_ID, MLFLOW_ALLOW_FILE_STORE="true")
        env.pop("MLFLOW_EXPERIMENT_NAME", None)
        args.offline = offline_dir
    cmd = args.command
    shell = len(cmd) == 1
    proc = subprocess.Popen(cmd[0] if shell else cmd, shell=shell, env=env)
    # This process's own MLflow use must not phone home: MLflow's telemetry fetches a config and
    # flushes at exit, which costs about a second offline (the command's environment is untouched).
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    reporter = _Reporter(run_id, tracking_uri, args.extra_tags, snapshot)
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
    try:
        _finish(reporter, args, run_id, rc, stopped)
    except Exception as e:  # noqa: BLE001 - the store went away: the status file and `repro sync` decide
        print(f"repro runtime: could not end the run in the tracking store: {e}", file=sys.stderr)
        return rc or 1
    return rc


def outcome(rc: int, stopped: list[int]) -> tuple[str, str | None]:
    """(status, reason) of a command that exited with `rc` (negative: killed by that signal)."""
    if stopped:
        return "KILLED", f"stopped by signal {signal.Signals(stopped[0]).name}"
    if rc == 0:
        return "FINISHED", None
    return "FAILED", (f"exit code {rc}" if rc > 0 else f"killed by signal {signal.Signals(-rc).name}")


def _finish(reporter: _Reporter, args: argparse.Namespace, run_id: str, rc: int, stopped: list[int]) -> None:
    status, reason = outcome(rc, stopped)
    reason = explain(reason, args.log_file) if status == "FAILED" else reason
    end_time = int(time.time() * 1000)
    status_file = os.environ.get("REPRO_STATUS_FILE")
    if status_file:
        try:
            Path(status_file).parent.mkdir(parents=True, exist_ok=True)
            Path(status_file).write_text(json.dumps({"rc": rc, "status": status, "reason": reason, "end_time": end_time}))
        except OSError as e:
            print(f"repro runtime: could not write {status_file}: {e}", file=sys.stderr)
    if reporter.error is not None:
        print(f"repro runtime: could not record the fingerprint: {reporter.error}", file=sys.stderr)
    from mlflow.tracking import MlflowClient

    client = reporter.client or MlflowClient(reporter.tracking_uri)
    if reason:
        client.set_tag(run_id, T.STATUS_REASON, T.short(reason))
    if args.log_file and Path(args.log_file).is_file():
        try:
            client.log_artifact(run_id, args.log_file, artifact_path=Path(T.LOG_ARTIFACT).parent.as_posix())
        except Exception as e:  # noqa: BLE001
            print(f"repro runtime: could not attach the log: {e}", file=sys.stderr)
    client.set_terminated(run_id, status, end_time=end_time)
    if args.offline:
        offline.finish(args.offline, status, reason, end_time)


def wrap(command: str, run_id: str, python: str | None = None) -> list[str]:
    """The argv that runs `command` (a shell string) under this runtime."""
    return [python or sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--", command]


__all__ = ["main", "outcome", "wrap"]
