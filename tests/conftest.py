"""Fixtures shared by every test: a fresh sqlite tracking store, the project root, the venv's tools."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.services` (real Slurm, mlflow server) is importable from tests and benchmarks
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.services.slurm", "tests.services.mlflow_server"]
FIXTURES = Path(__file__).parent / "fixtures"
BIN = Path(sys.executable).parent


from tests.services import free_port  # noqa: E402  (after the sys.path insert above)

__all__ = ["BIN", "FIXTURES", "ROOT", "free_port"]

# the migrated empty database each run's local store copies (runtime/localstore.py): made once per
# session and MLflow version, not once per test's REPRO_HOME (the jobs of a test inherit it)
os.environ.setdefault("REPRO_CACHE_DIR", tempfile.mkdtemp(prefix="repro-test-cache-"))


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def pytest_configure(config: pytest.Config) -> None:
    # `timeout`, a CI cancel or a kill of the run sends SIGTERM, whose default ends Python without unwinding:
    # taken as an interrupt, pytest tears the fixtures down, so every service a test started (an HTCondor
    # pool, Slurm, an mlflow server, PostgreSQL) is stopped
    signal.signal(signal.SIGTERM, _interrupted)


@pytest.fixture(autouse=True)
def _environ_restored():
    """Each test starts from the environment the session started with: code under test that sets
    determinism variables in-process (determinism.apply, an entry point's main) must not leak them
    into a later test's fingerprint."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def tracking(tmp_path, monkeypatch) -> str:
    """A fresh sqlite store in tmp_path, set as MLFLOW_TRACKING_URI, with REPRO_HOME beside it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "repro"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    import mlflow
    from mlflow.tracking import fluent

    saved = dict(os.environ)  # mlflow.projects.run exports MLFLOW_EXPERIMENT_ID into os.environ
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    fluent._active_experiment_id = None  # MLflow caches the last experiment across stores
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
    fluent._active_experiment_id = None
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def cli_env(tracking) -> dict[str, str]:
    """Environment for running the real CLIs (`mlflow`, `repro`) in a subprocess."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT))
