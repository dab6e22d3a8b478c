"""A throwaway PostgreSQL cluster from Debian's binaries (initdb + pg_ctl as the `postgres` user), trust
auth on 127.0.0.1:<free port>, data in a temporary directory, with a database `mlflow`:

    with postgres() as uri:   # postgresql+psycopg2://postgres@127.0.0.1:<port>/mlflow
        ...
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

from . import free_port


def pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@contextmanager
def postgres() -> Iterator[str]:
    """Start a cluster, create the database `mlflow`, yield its SQLAlchemy URI; stop and remove it after."""
    bin_ = pg_bin()
    if bin_ is None:
        import pytest

        pytest.skip("Debian PostgreSQL is not installed (scripts/setup.sh --system installs it)")
    d = Path(tempfile.mkdtemp(prefix="repro-pg-"))
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    port = free_port()
    data = d / "data"
    try:
        _as_postgres([str(bin_ / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
        _as_postgres([str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(d / "log"), "-w", "-o",
                      f"-p {port} -k {d} -h 127.0.0.1 -F", "start"])
        try:
            _as_postgres([str(bin_ / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow"])
            # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the venv has psycopg2
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
        finally:
            _as_postgres([str(bin_ / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
