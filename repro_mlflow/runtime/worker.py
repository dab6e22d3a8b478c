"""`python -m repro_mlflow.runtime [--run-id ID] -- COMMAND...`
   `python -m repro_mlflow.runtime --manifest FILE --index I`

Local-first: the entry point command logs to the run's local MLflow store in `$REPRO_OFFLINE_DIR`
(its `MLFLOW_TRACKING_URI`, `MLFLOW_RUN_ID`; the real ones are `REPRO_TRACKING_URI`,
`REPRO_RUN_ID`), always. The command starts at once; a thread (runtime/mirror.py) writes the
fingerprint into the local store and mirrors the store into the real run every second or two.
When the command ends, the mirror delivers the rest and ends the real run FINISHED, FAILED (with
`repro.status_reason`) or KILLED (on SIGTERM/SIGINT), for up to `REPRO_MIRROR_GRACE` seconds;
a SIGTERM sent by the scheduler to requeue the job (a manifest with `"requeue": true`, and
`runtime/requeue.py` says so) leaves the run SCHEDULED with `repro.attempt` + 1 instead;
if the tracking server is still away, `repro sync` replays what is left. `REPRO_OFFLINE=1`: no
mirror from the worker at all (its results come back with the job's outputs).

Extra tags: `REPRO_EXTRA_TAGS` (a JSON object; `$VAR` in values is filled from the environment,
tags whose variables are unset are left out) and a manifest's `extra_tags` are written with the
fingerprint. `REPRO_STATUS_FILE`, when set, receives `{"rc", "status", "reason", "end_time"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import tags as T
from . import manifest as M
from . import offline, registry
from .mirror import Mirror, client_settings
from .replay import open_local
from .reason import explain
from .requeue import requeued


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
    args.requeue = False
    if args.manifest is not None:
        if args.index is None:
            p.error("--manifest needs --index")
        entry = M.load(args.manifest, args.index)
        os.environ.update(entry.env)
        if entry.cwd:
            os.chdir(entry.cwd)
        args.run_id, args.command, args.extra_tags = entry.run_id, [entry.command], entry.extra_tags
        args.requeue = entry.requeue
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


def _local_store(run_id: str, tracking_uri: str | None) -> tuple[Path, bool, str, str]:
    """(bundle dir, temporary?, local URI, local run id): `$REPRO_OFFLINE_DIR`, or a temporary one."""
    offline_dir = os.environ.get("REPRO_OFFLINE_DIR")
    temporary = not offline_dir
    bundle = Path(offline_dir) if offline_dir else Path(tempfile.mkdtemp(prefix=f"repro-{run_id[:8]}-"))
    local_uri, local_run_id = offline.start(bundle, run_id, tracking_uri)
    return bundle, temporary, local_uri, local_run_id


def localfirst_uri(offline_dir: str) -> str:
    """The entry point's tracking URI: writes to the local store in `offline_dir`, reads through to
    the real server (runtime/localfirst.py; the scheme of runtime/registry.py)."""
    return f"{registry.SCHEME}://{Path(offline_dir).resolve().as_posix()}"


def command_env(environ: dict[str, str], run_id: str, tracking_uri: str | None, local_uri: str, local_run_id: str,
                local_experiment_id: str) -> dict[str, str]:
    """The entry point's environment: MLflow pointed at the local store, the real run under REPRO_*."""
    if registry.available("mlflow.tracking_store"):  # repro-mlflow installed in the job's environment
        from .offline import DB_FILE  # noqa: PLC0415

        local_uri = localfirst_uri(local_uri.removeprefix("sqlite:///").removesuffix("/" + DB_FILE))
    env = dict(environ, MLFLOW_TRACKING_URI=local_uri, MLFLOW_RUN_ID=local_run_id,
               MLFLOW_EXPERIMENT_ID=local_experiment_id, REPRO_RUN_ID=run_id, REPRO_TRACKING_URI=tracking_uri or "")
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    if "MLFLOW_REGISTRY_URI" not in environ and registry.available():
        env["MLFLOW_REGISTRY_URI"] = registry.URI  # not local-first: one line on use, naming the real server
    return env


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    snapshot = dict(os.environ)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        bundle, temporary, local_uri, local_run_id = _local_store(args.run_id, tracking_uri)
    except RuntimeError as e:  # a bundle of the previous layout where this run's store goes
        print(f"repro runtime: {e}", file=sys.stderr)
        return 2
    env = command_env(os.environ, args.run_id, tracking_uri, local_uri, local_run_id,
                      str(offline.read_bundle(bundle)["experiment_id"]))
    cmd = args.command
    shell = len(cmd) == 1
    proc = subprocess.Popen(cmd[0] if shell else cmd, shell=shell, env=env)
    # This process's own MLflow use must not phone home: MLflow's telemetry fetches a config and
    # flushes at exit, which costs about a second offline (the command's environment is untouched).
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    client_settings()
    live = os.environ.get("REPRO_OFFLINE") != "1"
    if not live:
        print(f"repro runtime: REPRO_OFFLINE=1: logging to {bundle} only; `repro sync` replays it", file=sys.stderr)
    mirror = Mirror(args.run_id, tracking_uri, bundle, local_uri, local_run_id, args.extra_tags, snapshot, live)
    mirror.start()

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
    ended = len(stopped)
    # the scheduler's SIGTERM reaches every process of the job: the command may die of it first
    terminated = (stopped[:1] == [signal.SIGTERM]) or (not stopped and rc in (-signal.SIGTERM, 128 + signal.SIGTERM))
    if args.requeue and terminated and requeued(snapshot):
        _requeue(mirror, bundle)
        return rc
    _finish(mirror, args, bundle, temporary, rc, stopped, aborted=lambda: len(stopped) > ended)
    return rc


def _requeue(mirror: Mirror, bundle: Path) -> bool:
    """The scheduler stopped this attempt to start the job again: deliver what was logged, leave the run
    SCHEDULED with `repro.attempt` + 1 (never KILLED); no status file, the bundle stays open for the next attempt."""
    offline.requeued(bundle)
    mirror.stop()
    done = mirror.requeue()
    print("repro runtime: stopped for a requeue; the run waits for its next attempt"
          + ("" if done else " (the tracking server did not answer: `repro sync` sets it)"), file=sys.stderr)
    return done


def outcome(rc: int, stopped: list[int]) -> tuple[str, str | None]:
    """(status, reason) of a command that exited with `rc` (negative: killed by that signal)."""
    if stopped:
        return "KILLED", f"stopped by signal {signal.Signals(stopped[0]).name}"
    if rc == 0:
        return "FINISHED", None
    return "FAILED", (f"exit code {rc}" if rc > 0 else f"killed by signal {signal.Signals(-rc).name}")


def _finish(mirror: Mirror, args: argparse.Namespace, bundle: Path, temporary: bool, rc: int, stopped: list[int],
            aborted=lambda: False) -> bool:
    """Status file, bundle.json, the log into the local store, then the mirror's last delivery; True if delivered."""
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
    offline.finish(bundle, status, reason, end_time)
    mirror.stop()  # the fingerprint is in the local store before the log and the last delivery
    if mirror.error is not None:
        print(f"repro runtime: could not record the fingerprint: {mirror.error}", file=sys.stderr)
    local = open_local(bundle)
    try:
        if reason:
            local.set_tag(T.STATUS_REASON, T.short(reason))  # delivered with the other tags
        if args.log_file and Path(args.log_file).is_file():
            local.add_file(args.log_file, T.LOG_ARTIFACT)
    except Exception as e:  # noqa: BLE001 - the local store refused: the run still ends
        print(f"repro runtime: could not write into the local store {bundle}: {e}", file=sys.stderr)
    delivered = mirror.finish(status, reason, end_time, aborted)
    offline.finish(bundle, status, reason, end_time, mirrored=delivered)
    if delivered and temporary:
        shutil.rmtree(bundle, ignore_errors=True)
    elif not delivered and mirror.live:
        print(f"repro runtime: tracking server away; the rest of the run is in {bundle}, `repro sync` replays it",
              file=sys.stderr)
    return delivered


def wrap(command: str, run_id: str, python: str | None = None) -> list[str]:
    """The argv that runs `command` (a shell string) under this runtime."""
    return [python or sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--", command]


__all__ = ["main", "outcome", "wrap"]
