"""A real `mlflow server` on 127.0.0.1 (sqlite backend and artifacts in a temporary directory),
stoppable and restartable on the same port: the tracking server a worker loses and finds again.

    with MlflowServer.start(tmp_path) as server:
        server.uri            # http://127.0.0.1:<port>
        server.stop(); server.restart()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import pytest

from . import free_port


class MlflowServer:
    def __init__(self, root: Path, port: int | None = None, backend_uri: str | None = None):
        self.root = Path(root)
        self.backend_uri = backend_uri or f"sqlite:///{self.root / 'server.db'}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def restart(self, timeout: float | None = None) -> None:
        """Start the server (again) on the same port and store; wait until /health answers (for
        `timeout` s, default $REPRO_TEST_SERVER_START_S or 90: a machine under load needs more)."""
        timeout = float(os.environ.get("REPRO_TEST_SERVER_START_S", 90)) if timeout is None else timeout
        if self.proc is not None:
            return
        mlflow = Path(sys.executable).parent / "mlflow"
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", self.backend_uri,
             "--artifacts-destination", str(self.root / "artifacts")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            # no job execution (MLflow's GenAI job runner: 7 huey consumer processes importing MLflow, which
            # the tests never use): a start costs one server process, and a stop does not wait on the runner
            env=dict(os.environ, MLFLOW_TRACKING_URI="", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.healthy():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"mlflow server did not start on {self.uri}:\n{tail}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and every process it started (its workers)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None
        end = time.monotonic() + 10
        while self.healthy() and time.monotonic() < end:
            time.sleep(0.2)

    @classmethod
    @contextmanager
    def start(cls, root: Path) -> Iterator[MlflowServer]:
        server = cls(root)
        try:
            server.restart()
            yield server
        finally:
            server.stop()


@pytest.fixture
def mlflow_server(tmp_path) -> Iterator[MlflowServer]:
    """A real `mlflow server` for one test (stop() / restart() keep its port and store)."""
    with MlflowServer.start(tmp_path / "mlflow-server") as server:
        yield server
