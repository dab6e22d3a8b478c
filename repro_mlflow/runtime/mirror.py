"""The worker's mirror: ships the run's local store into the real run while the command runs.

A thread of the runtime. It first writes the fingerprint (tags + `repro/fingerprint.json`) and the
extra tags into the local store, then every `REPRO_MIRROR_INTERVAL` seconds (default 1) runs one
`Replayer.step()` (runtime/replay.py, the same replay `repro sync` uses). When the tracking server
is away a step fails and the next one retries; the command never waits on it. `finish()` (after the
command ended) delivers the rest and ends the real run, trying for up to `REPRO_MIRROR_GRACE`
seconds (default 60); past that the local store stays as the bundle `repro sync` replays.

The mirror's own MLflow client does not retry inside a request (`MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`,
`MLFLOW_HTTP_REQUEST_TIMEOUT=REPRO_MIRROR_TIMEOUT`, default 30 s): the mirror is the retry loop, and
the grace period stays bounded. So that a campaign's mirrors do not stampede one server, the waits
between steps are jittered, grow exponentially after a failed step (a 429/503 answer, a refused
connection, a timeout; up to `REPRO_MIRROR_BACKOFF_MAX` s, default 15) and after a slow answer
(runtime/pacing.py); each request carries up to MLflow's batch limits (runtime/batching.py).
Stdlib + mlflow(-skinny).
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from .. import tags as T
from .record import expand_tags
from . import offline
from .pacing import Pace


def _float_env(name: str, default: float, environ: Mapping[str, str] = os.environ) -> float:
    try:
        return float(environ.get(name, default))
    except ValueError:
        print(f"repro runtime: {name} is not a number; using {default}", file=sys.stderr)
        return default


def client_settings(environ: MutableMapping[str, str] = os.environ, run_env: Mapping[str, str] | None = None) -> None:
    """The runtime's own MLflow client: one try per request, bounded by REPRO_MIRROR_TIMEOUT (read from
    the run's environment `run_env`, the record's `env` included; default `environ`)."""
    timeout = _float_env("REPRO_MIRROR_TIMEOUT", 30, environ if run_env is None else run_env)
    environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(timeout))


@contextmanager
def bundle_lock(bundle: str | Path, blocking: bool = True):
    """An exclusive lock on the bundle, so that one replayer at a time delivers it (yields False if busy)."""
    fd = os.open(Path(bundle) / offline.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return (s.splitlines()[0] if s else type(e).__name__)[:200]


class Mirror(threading.Thread):
    """Fingerprint into the local store, then mirror it into the real run until `finish()`."""

    def __init__(self, real_run_id: str, real_uri: str | None, bundle: str | Path, local_uri: str, local_run_id: str,
                 extra_tags: dict[str, str], environ: dict[str, str], live: bool = True):
        super().__init__(daemon=True, name="repro-mirror")
        self.real_run_id, self.real_uri, self.bundle = real_run_id, real_uri, Path(bundle)
        self.local_uri, self.local_run_id, self.extra_tags = local_uri, local_run_id, extra_tags
        # A snapshot taken before mlflow is imported: MLflow's telemetry thread edits os.environ
        # while it runs, and iterating os.environ then raises. The run's environment (the record's
        # `env` included, which the worker's own os.environ lacks): REPRO_MIRROR_* are read from it.
        self.environ = environ
        self.live = live  # False: REPRO_OFFLINE=1, nothing is sent from the worker
        self.interval = max(0.1, _float_env("REPRO_MIRROR_INTERVAL", 1.0, environ))
        self.pace = Pace(self.interval, _float_env("REPRO_MIRROR_BACKOFF_MAX", 15.0, environ))
        self.error: BaseException | None = None  # the fingerprint could not be recorded
        self.replayer = None
        self.away_since: float | None = None
        self.delivered = False
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            self._fingerprint()
        except BaseException as e:  # noqa: BLE001 - reported after the command ends
            self.error = e
        while self.live and not self._halt.is_set():
            self._halt.wait(self._timed_tick()[1])

    def _timed_tick(self, final: bool = False) -> tuple[bool, float]:
        """One step, and how long to wait before the next (runtime/pacing.py)."""
        t0 = time.monotonic()
        ok = self.tick(final)
        return ok, self.pace.next_wait(ok, time.monotonic() - t0)

    def _fingerprint(self) -> None:
        from ..fingerprint import capture, to_tags  # off the path to the command's start

        record = capture(self.environ)
        from mlflow.entities import RunTag  # slow import, kept in this thread
        from mlflow.tracking import MlflowClient

        local = MlflowClient(self.local_uri)
        tags = {**to_tags(record), **expand_tags(self.extra_tags, self.environ)}
        local.log_batch(self.local_run_id, tags=[RunTag(k, T.short(v)) for k, v in tags.items()])
        local.log_dict(self.local_run_id, record, T.FINGERPRINT_ARTIFACT)

    def tick(self, final: bool = False) -> bool:
        """One replay step; False if the server is away (said once on stderr, and again when it is back)."""
        try:
            if self.replayer is None:
                if self.real_uri and not self.real_uri.startswith(("http:", "https:")) and not offline.reachable(self.real_uri):
                    raise ConnectionError(f"{self.real_uri} does not exist here")  # never create a stray store
                from mlflow.tracking import MlflowClient

                from .replay import Replayer

                self.replayer = Replayer(MlflowClient(self.real_uri), self.real_run_id, self.bundle, list_artifacts=False)
            with bundle_lock(self.bundle):
                self.replayer.step(final)
        except Exception as e:  # noqa: BLE001 - any failure: retried on the next tick
            if self.away_since is None:
                self.away_since = time.monotonic()
                print(f"repro runtime: tracking server {self.real_uri} away ({_first_line(e)}); "
                      "the command goes on logging locally, the mirror retries", file=sys.stderr)
            return False
        if self.away_since is not None:
            print(f"repro runtime: tracking server back after {time.monotonic() - self.away_since:.0f} s; mirror caught up",
                  file=sys.stderr)
            self.away_since = None
        return True

    def stop(self) -> None:
        """End the live loop (after its current step) and wait for it."""
        self._halt.set()
        if self.is_alive():
            self.join()

    def requeue(self, grace_s: float = 3.0) -> bool:
        """Deliver what was logged and mark the real run SCHEDULED, attempt + 1; try for `grace_s` s
        (the scheduler kills the job soon after its SIGTERM). True if done."""
        self.stop()
        if not self.live:
            return False
        deadline = time.monotonic() + min(grace_s, max(0.0, _float_env("REPRO_MIRROR_GRACE", 60, self.environ)))
        while True:
            ok, wait = self._timed_tick(final=True)
            if ok:
                try:
                    self.replayer.requeue()
                    return True
                except Exception:  # noqa: BLE001 - retried until the deadline; else `repro sync` does it
                    wait = self.pace.next_wait(False)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(wait, left))

    def finish(self, status: str, reason: str | None, end_time: int, aborted=lambda: False) -> bool:
        """Deliver the rest and end the real run, for up to REPRO_MIRROR_GRACE s; True if done."""
        self.stop()
        if not self.live:
            return False
        deadline = time.monotonic() + max(0.0, _float_env("REPRO_MIRROR_GRACE", 60, self.environ))
        while True:
            ok, wait = self._timed_tick(final=True)
            if ok:
                try:
                    self.replayer.end(status, reason, end_time)
                    self.delivered = True
                    return True
                except Exception as e:  # noqa: BLE001
                    wait = self.pace.next_wait(False)
                    if self.away_since is None:
                        self.away_since = time.monotonic()
                        print(f"repro runtime: could not end the run ({_first_line(e)}); retrying", file=sys.stderr)
            until = min(deadline, time.monotonic() + wait)
            while True:  # the wait may be long (backing off): an abort is seen within an interval
                if aborted():
                    return False
                left = until - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(self.interval, left))
            if time.monotonic() >= deadline:
                return False


__all__ = ["Mirror", "bundle_lock", "client_settings"]
