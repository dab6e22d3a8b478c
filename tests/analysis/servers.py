"""Real services for the analysis tests: an `mlflow server` and a Debian PostgreSQL, each on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.services import free_port
from tests.services.mlflow_server import MlflowServer

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def mlflow_server(backend_uri: str, workdir: Path):
    """`mlflow server` on 127.0.0.1:<free port> over `backend_uri`; yields its http:// URI."""
    server = MlflowServer(workdir / "mlflow-server", backend_uri=backend_uri)
    try:
        server.restart(timeout=120)
        yield server.uri
    finally:
        server.stop()


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
