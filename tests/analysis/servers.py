"""Real services for the analysis tests: an `mlflow server` and a Debian PostgreSQL, each on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import socket
import sys

BIN = Path(sys.executable).parent

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(backend_uri: str, workdir: Path):
    """`mlflow server` on 127.0.0.1:<free port> over `backend_uri`; yields its http:// URI."""
    port = free_port()
    log = open(workdir / f"mlflow-server-{port}.log", "wb")
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--artifacts-destination", str(workdir / "mlartifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("mlflow server did not start: " + (workdir / f"mlflow-server-{port}.log").read_text()[-2000:])
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@contextmanager
def postgres():
    """A throwaway PostgreSQL 15 cluster (trust auth, 127.0.0.1:<free port>) with a database `mlflow`; yields its URI."""
    if not (PG_BIN / "initdb").exists():
        import pytest

        pytest.skip("Debian PostgreSQL 15 is not installed")
    d = Path(tempfile.mkdtemp(prefix="repro-pg-"))
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    port = free_port()
    data = d / "data"
    try:
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(d / "log"), "-w", "-o",
                      f"-p {port} -k {d} -h 127.0.0.1 -F", "start"])
        try:
            _as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow"])
            # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the venv has psycopg2
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
        finally:
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
