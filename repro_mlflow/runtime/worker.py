"""`python -m repro_mlflow.runtime RECORD INDEX`: the one worker entry of every backend.
   `python -m repro_mlflow.runtime [--run-id ID] -- COMMAND...`: one command, outside any batch.

RECORD is a batch record (`runtime/record.py`, written at submit); the worker runs its entry INDEX:
the command in the record's `cwd`, its environment the worker's own plus the record's (tracking
URI, experiment, common and per-run variables), the run's files in its `run_dir` (`output.log`,
`status.json`, the local store `offline/`). Every backend starts this same entry and differs only in
how: repro-local's driver, Slurm's array task, HTCondor's job wrapper after unpacking, EC2's user-data.

Local-first: the entry point command logs to the run's local MLflow store (its `MLFLOW_TRACKING_URI`,
`MLFLOW_RUN_ID`; the real ones are `REPRO_TRACKING_URI`, `REPRO_RUN_ID`), always. The command starts
at once; a thread (runtime/mirror.py) writes the fingerprint into the local store and mirrors the
store into the real run every second or two. When the command ends, the mirror delivers the rest and
ends the real run FINISHED, FAILED (with `repro.status_reason`) or KILLED (on SIGTERM/SIGINT), for
up to `REPRO_MIRROR_GRACE` seconds; a SIGTERM sent by the scheduler to requeue the job (a record
whose `worker.requeue` is true, and `runtime/requeue.py` says so) leaves the run SCHEDULED with
`repro.attempt` + 1 instead; if the tracking server is still away, `repro sync` replays what is
left. No mirror from the worker at all with the record's `worker.offline` or `REPRO_OFFLINE=1`
(its results come back with the job's outputs).

The command lives and dies with the runtime: it runs in the runtime's process group (the local
driver and Slurm end what is left of it), and on Linux it is started with `PR_SET_PDEATHSIG`
(SIGKILL), a simple shell command `exec`ed so that the signal reaches the entry point itself: a
`kill -9` of the runtime never leaves an orphan logging on.

The record's `worker.extra_tags` (`$VAR` in values filled from the environment, tags whose variables
are unset left out) are written with the fingerprint. The one-command form takes its settings from
its environment: `MLFLOW_TRACKING_URI`, `REPRO_OFFLINE_DIR` (the local store), `REPRO_LOG_FILE`,
`REPRO_STATUS_FILE` (receives `{"rc", "status", "reason", "end_time"}`), `REPRO_EXTRA_TAGS` (a JSON
object of extra tags).
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
from dataclasses import dataclass, field
from pathlib import Path

from .. import tags as T
from . import offline, registry, storefault
from . import record as R
from .mirror import Mirror, client_settings
from .replay import open_local
from .reason import explain
from .requeue import requeued


@dataclass
class Invocation:
    """What one start of the worker runs, however it was asked: the command, where, with what environment."""

    run_id: str
    command: list[str]  # one element: a shell command line
    env: dict[str, str]  # the command's environment before the runtime points MLflow at the local store
    cwd: str | None = None
    offline_dir: str | None = None  # the run's local store; None: a temporary one
    log_file: str | None = None
    status_file: str | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)
    requeue: bool = False
    live: bool = True  # mirror into the real run while the command runs
    # the local store's filesystem refused a write (read-only, full): [cause, logging calls not kept]
    store_fault: list = field(default_factory=lambda: [None, 0])


def _parse(argv: list[str] | None) -> Invocation:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 2 and not argv[0].startswith("-") and argv[1].isdigit():
        return from_record(argv[0], int(argv[1]))
    p = argparse.ArgumentParser(prog="python -m repro_mlflow.runtime", description=__doc__,
                                usage="%(prog)s RECORD INDEX | %(prog)s [--run-id ID] [--log-file F] -- COMMAND...",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-id", default=os.environ.get("MLFLOW_RUN_ID"), help="MLflow run to report to (default: $MLFLOW_RUN_ID)")
    p.add_argument("--log-file", default=os.environ.get("REPRO_LOG_FILE"), help="command output file to attach as the artifact repro/output.log")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the entry point command (after --); one argument runs through the shell")
    args = p.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        p.error("no command given (put it after --), or give a batch record and an index")
    if not args.run_id:
        p.error("no run id: pass --run-id or set MLFLOW_RUN_ID")
    env = dict(os.environ)
    return Invocation(args.run_id, args.command, env, offline_dir=env.get("REPRO_OFFLINE_DIR"), log_file=args.log_file,
                      status_file=env.get("REPRO_STATUS_FILE"), extra_tags=_env_tags(env),
                      live=env.get("REPRO_OFFLINE") != "1")


def from_record(path: str, index: int) -> Invocation:
    """Entry `index` of the batch record at `path`: its environment made here, explicitly, for the command."""
    try:
        job = R.job(path, index)
    except R.RecordError as e:
        raise SystemExit(f"repro runtime: {e}") from None
    env = {**os.environ, **job.env}
    here = os.path.join(os.path.dirname(sys.executable), "python")
    if "PATH" not in job.env and os.path.exists(here) and os.path.samefile(here, sys.executable):
        # `python` in an entry point is the interpreter this worker runs under (the jobs' python), unless the
        # run's own environment chose one (a project's declared env puts its interpreter first on PATH)
        env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), env.get("PATH")) if p)
    return Invocation(job.run_id, [job.command], env, cwd=str(job.cwd), offline_dir=str(job.run_dir / "offline"),
                      log_file=str(job.run_dir / "output.log"), status_file=str(job.run_dir / "status.json"),
                      extra_tags={**job.extra_tags, **_env_tags(os.environ)}, requeue=job.requeue,
                      live=not job.offline and env.get("REPRO_OFFLINE") != "1")


def _env_tags(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    extra = environ.get("REPRO_EXTRA_TAGS")
    if not extra:
        return {}
    try:
        tags = json.loads(extra)
    except ValueError:
        tags = None
    if not isinstance(tags, dict):
        print("repro runtime: REPRO_EXTRA_TAGS is not a JSON object; ignored", file=sys.stderr)
        return {}
    return {str(k): str(v) for k, v in tags.items()}


def _local_store(run_id: str, tracking_uri: str | None, offline_dir: str | None,
                 experiment_id: str | None = None) -> tuple[Path, bool, str, str]:
    """(bundle dir, temporary?, local URI, local run id): `offline_dir`, or a temporary one."""
    temporary = not offline_dir
    bundle = Path(offline_dir) if offline_dir else Path(tempfile.mkdtemp(prefix=f"repro-{run_id[:8]}-"))
    local_uri, local_run_id = offline.start(bundle, run_id, tracking_uri, experiment_id)
    return bundle, temporary, local_uri, local_run_id


def localfirst_uri(offline_dir: str) -> str:
    """The entry point's tracking URI: writes to the local store in `offline_dir`, reads through to
    the real server (runtime/localfirst.py; the scheme of runtime/registry.py)."""
    return f"{registry.SCHEME}://{Path(offline_dir).resolve().as_posix()}"


def command_env(environ: dict[str, str], run_id: str, tracking_uri: str | None, local_uri: str, local_run_id: str,
                local_experiment_id: str) -> dict[str, str]:
    """The entry point's environment: MLflow pointed at the local store, the real run under REPRO_*.
    Through the local-first scheme the entry point sees the real run's ids (runtime/localfirst.py maps
    them); on a bare `sqlite:` local store (repro-mlflow not installed in the job's env), the local ones."""
    env = dict(environ, MLFLOW_TRACKING_URI=local_uri, MLFLOW_RUN_ID=local_run_id,
               MLFLOW_EXPERIMENT_ID=local_experiment_id, REPRO_RUN_ID=run_id, REPRO_TRACKING_URI=tracking_uri or "")
    if registry.available("mlflow.tracking_store"):  # repro-mlflow installed in the job's environment
        from .offline import DB_FILE  # noqa: PLC0415

        env["MLFLOW_TRACKING_URI"] = localfirst_uri(local_uri.removeprefix("sqlite:///").removesuffix("/" + DB_FILE))
        env["MLFLOW_RUN_ID"] = run_id
        if registry.foreign_env(environ):  # a project's own env (python_env.yaml, conda): the scheme on its path
            from .localstore import default_cache_dir  # noqa: PLC0415

            shim = str(registry.scheme_path(default_cache_dir()))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (shim, environ.get("PYTHONPATH")) if p)
        if environ.get("MLFLOW_EXPERIMENT_ID"):  # else the local one stands for it (the one-command form)
            env["MLFLOW_EXPERIMENT_ID"] = environ["MLFLOW_EXPERIMENT_ID"]
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    return env


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Signals are taken from the start: making the local store imports MLflow (seconds), and a job
    # cancelled meanwhile must still end its run KILLED, not die with the run left SCHEDULED.
    stopped: list[int] = []
    running: list[subprocess.Popen] = []

    def _forward(signum, _frame):
        stopped.append(signum)
        for p in running:
            try:
                p.send_signal(signum)
            except ProcessLookupError:
                pass

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, _forward)
    tracking_uri = args.env.get("MLFLOW_TRACKING_URI")
    if tracking_uri and "@" in tracking_uri:  # credentials in the URI (the one-command form): into MLflow's auth
        from ..reach import split_credentials  # noqa: PLC0415  variables, never in a file or a message

        tracking_uri, creds = split_credentials(tracking_uri)
        args.env.update(creds, MLFLOW_TRACKING_URI=tracking_uri)
        os.environ.update(creds)  # this process's own client (the mirror)
    snapshot = dict(args.env)
    storefault.quiet_mlflow()  # a refused write of the local store is said once, not a traceback each
    try:
        bundle, temporary, local_uri, local_run_id = _local_store(args.run_id, tracking_uri, args.offline_dir,
                                                                  args.env.get("MLFLOW_EXPERIMENT_ID") or None)
    except RuntimeError as e:  # a bundle of the previous layout where this run's store goes
        print(f"repro runtime: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the store cannot be made: said in one line, the run ended FAILED
        cause = storefault.store_cause(e)
        if cause is None:
            raise
        return _no_store(args, tracking_uri, cause)
    env = command_env(args.env, args.run_id, tracking_uri, local_uri, local_run_id,
                      str(offline.read_bundle(bundle)["experiment_id"]))
    if not args.live:
        env["REPRO_OFFLINE"] = "1"  # the entry point's registry queues without waiting for a mirror
    cmd = args.command
    shell = len(cmd) == 1
    proc = None
    fault_r, fault_w = os.pipe()  # the entry point's store says here what it could not keep (runtime/storefault.py)
    env[storefault.FD_VAR] = str(fault_w)
    if not stopped:  # a job stopped before its command started never starts it
        proc = subprocess.Popen(_exec_simple(cmd[0]) if shell else cmd, shell=shell, env=env, cwd=args.cwd,
                                preexec_fn=_dies_with_runtime(), pass_fds=(fault_w,))
        running.append(proc)
    os.close(fault_w)
    if proc is not None and stopped and proc.poll() is None:  # the signal came between the check and the start
        proc.send_signal(stopped[0])
    # This process's own MLflow use must not phone home: MLflow's telemetry fetches a config and
    # flushes at exit, which costs about a second offline (the command's environment is untouched).
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    client_settings(run_env=snapshot)  # REPRO_MIRROR_TIMEOUT as the run's env (the record's `env` too) sets it
    live = args.live
    if not live:
        print(f"repro runtime: offline: logging to {bundle} only; `repro sync` replays it", file=sys.stderr)
    mirror = Mirror(args.run_id, tracking_uri, bundle, local_uri, local_run_id, args.extra_tags, snapshot, live)
    mirror.start()

    rc = proc.wait() if proc is not None else 128 + stopped[0]
    args.store_fault[:] = storefault.collect(fault_r)
    os.close(fault_r)
    ended = len(stopped)
    # the scheduler's SIGTERM reaches every process of the job: the command may die of it first
    terminated = (stopped[:1] == [signal.SIGTERM]) or (not stopped and rc in (-signal.SIGTERM, 128 + signal.SIGTERM))
    if args.requeue and terminated and requeued(snapshot):
        _requeue(mirror, bundle)
        return rc
    _finish(mirror, args, bundle, temporary, rc, stopped, aborted=lambda: len(stopped) > ended)
    return rc or (1 if args.store_fault[1] else 0)  # what was logged was not all kept: never a success


_NOT_A_PROGRAM = {"exec", "cd", "export", "set", "source", ".", "if", "for", "while", "until", "case", "function",
                  "{", "!", "time", "eval"}


def _exec_simple(command: str) -> str:
    """`exec COMMAND` for one simple command (a program and its arguments, quoted as you like), so that the
    shell is replaced by the entry point and the parent-death signal is the entry point's; any other
    command line (a list, a pipeline, a compound, an assignment first) as it is."""
    import shlex  # noqa: PLC0415

    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell says so
        return command
    if not tokens or "\n" in command.strip() or tokens[0] in _NOT_A_PROGRAM or "=" in tokens[0].split("/")[0] \
            or any(t and set(t) <= set(";&|()") for t in tokens):
        return command
    return "exec " + command.strip()


def _dies_with_runtime():
    """The command's preexec_fn: on Linux, SIGKILL when the runtime dies (`PR_SET_PDEATHSIG`); elsewhere nothing."""
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415  (resolved here: nothing is imported between fork and exec)

        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None
    parent = os.getpid()

    def setup() -> None:
        if prctl is not None:
            prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the runtime died before the line above
                os._exit(137)

    return setup


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


def _store_refused(args: Invocation, bundle: Path, e: BaseException) -> bool:
    """Whether `e` is the local store's filesystem refusing the runtime's own write: counted, said once."""
    cause = storefault.store_cause(e)
    if cause is None:
        return False
    if args.store_fault[0] is None:
        args.store_fault[0] = cause
        print(f"repro runtime: the local store {bundle} cannot be written ({cause}); the run's end is sent to the "
              "tracking server directly", file=sys.stderr)
    args.store_fault[1] += 1
    return True


def _finish(mirror: Mirror, args: Invocation, bundle: Path, temporary: bool, rc: int, stopped: list[int],
            aborted=lambda: False) -> bool:
    """Status file, bundle.json, the log into the local store, then the mirror's last delivery; True if delivered.
    A local store that could not keep what was logged (`args.store_fault`) makes the run FAILED (a KILLED or
    FAILED one keeps its state), with `repro.status_reason` saying what was not kept."""
    status, reason = outcome(rc, stopped)
    reason = explain(reason, args.log_file) if status == "FAILED" else reason
    end_time = int(time.time() * 1000)
    first = _with_fault(args, bundle, status, reason)
    _write_status(args, rc, *first, end_time)
    _note_end(args, bundle, *first, end_time)
    mirror.stop()  # the fingerprint is in the local store (or refused) before the log and the last delivery
    if mirror.error is not None and not _store_refused(args, bundle, mirror.error):
        print(f"repro runtime: could not record the fingerprint: {mirror.error}", file=sys.stderr)
    local = open_local(bundle)
    for write in ((lambda: local.set_tag(T.STATUS_REASON, T.short(reason))) if reason else None,
                  (lambda: local.add_file(args.log_file, T.LOG_ARTIFACT))
                  if args.log_file and Path(args.log_file).is_file() else None):
        try:
            if write is not None and args.store_fault[0] is None:
                write()
        except Exception as e:  # noqa: BLE001 - the local store refused: the run still ends
            if not _store_refused(args, bundle, e):
                print(f"repro runtime: could not write into the local store {bundle}: {e}", file=sys.stderr)
    status, reason = _with_fault(args, bundle, status, reason)
    if (status, reason) != first:  # the runtime's own writes were refused
        _write_status(args, rc, status, reason, end_time)
    delivered = mirror.finish(status, reason, end_time, aborted)
    _note_end(args, bundle, status, reason, end_time, mirrored=delivered)
    if delivered and temporary:
        shutil.rmtree(bundle, ignore_errors=True)
    elif not delivered and mirror.live:
        print(f"repro runtime: tracking server away; the rest of the run is in {bundle}, `repro sync` replays it",
              file=sys.stderr)
    return delivered


def _with_fault(args: Invocation, bundle: Path, status: str, reason: str | None) -> tuple[str, str | None]:
    """(status, reason) once what the local store could not keep is counted: never FINISHED then."""
    cause, dropped = args.store_fault
    if not dropped:
        return status, reason
    return ("FAILED" if status == "FINISHED" else status), storefault.reason(str(bundle), cause, dropped, reason)


def _write_status(args: Invocation, rc: int, status: str, reason: str | None, end_time: int) -> None:
    if args.status_file:
        try:
            Path(args.status_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.status_file).write_text(json.dumps({"rc": rc, "status": status, "reason": reason,
                                                          "end_time": end_time}))
        except OSError as e:
            print(f"repro runtime: could not write {args.status_file}: {e}", file=sys.stderr)


def _note_end(args: Invocation, bundle: Path, status: str, reason: str | None, end_time: int, **extra) -> None:
    """bundle.json's end of the run, unless the local store's filesystem refuses it (said once)."""
    try:
        offline.finish(bundle, status, reason, end_time, **extra)
    except OSError as e:
        if not _store_refused(args, bundle, e):
            raise


def _no_store(args: Invocation, tracking_uri: str | None, cause: str) -> int:
    """The local store cannot be made (a read-only or full filesystem): one line, the command not run, the real
    run ended FAILED saying why (if the tracking server answers; else `repro sync` finds no store: FAILED too)."""
    where = args.offline_dir or tempfile.gettempdir()
    reason = f"local store {where} could not be made ({cause}); the command was not run"
    print(f"repro runtime: {reason}", file=sys.stderr)
    end_time = int(time.time() * 1000)
    if args.status_file:
        try:
            Path(args.status_file).write_text(json.dumps({"rc": 1, "status": "FAILED", "reason": reason,
                                                          "end_time": end_time}))
        except OSError:
            pass
    if tracking_uri and (tracking_uri.startswith(("http:", "https:")) or offline.reachable(tracking_uri)):
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        client_settings()
        try:
            from mlflow.tracking import MlflowClient  # noqa: PLC0415

            client = MlflowClient(tracking_uri)
            client.set_tag(args.run_id, T.STATUS_REASON, T.short(reason))
            client.set_terminated(args.run_id, "FAILED", end_time=end_time)
        except Exception as e:  # noqa: BLE001 - the server away: `repro sync` ends it
            print(f"repro runtime: could not end the run ({str(e).splitlines()[0] if str(e) else e!r})",
                  file=sys.stderr)
    return 1


def entry(record: str | Path, index: int | str, python: str | None = None) -> list[str]:
    """The argv of the one worker entry: run entry `index` of the batch record at `record`."""
    return [python or sys.executable, "-m", "repro_mlflow.runtime", str(record), str(index)]


__all__ = ["Invocation", "entry", "from_record", "main", "outcome"]
