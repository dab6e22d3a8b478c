"""Real services for the analysis tests: an `mlflow server` and a Debian PostgreSQL, each on a free port."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from tests.services.mlflow_server import MlflowServer
from tests.services.postgres import postgres

__all__ = ["mlflow_server", "postgres"]


@contextmanager
def mlflow_server(backend_uri: str, workdir: Path):
    """`mlflow server` on 127.0.0.1:<free port> over `backend_uri`; yields its http:// URI."""
    server = MlflowServer(workdir / "mlflow-server", backend_uri=backend_uri)
    try:
        server.restart(timeout=120)
        yield server.uri
    finally:
        server.stop()
