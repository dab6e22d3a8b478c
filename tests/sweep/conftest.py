"""Helpers for the sweep tests: run the real `repro-sweep` / `repro` CLIs, read runs back from MLflow."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT

HERE = Path(__file__).parent
PROJECT = HERE / "project"
CONF_EXTRA = HERE / "conf_extra"


def sweep(args: list[str], env: dict, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run `repro-sweep ARGS` from the repository root."""
    p = subprocess.run([str(BIN / "repro-sweep"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"repro-sweep {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def repro(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "repro"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def echo_args(*extra: str) -> list[str]:
    """repro-sweep arguments for the fast test project."""
    return ["--config-dir", str(CONF_EXTRA), "example=echo", f"project_dir={PROJECT}", *extra]


def runs(flt: str = "", experiment: str = "repro"):
    import mlflow

    return mlflow.search_runs(experiment_names=[experiment], filter_string=flt, output_format="list")


def wait_terminal(flt: str, n: int, env: dict, experiment: str = "repro", timeout: float = 300) -> list:
    """Poll (with `repro sync`, as a user would) until n runs matching flt are terminal."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = runs(flt, experiment)
        if len(found) >= n and all(r.info.status in ("FINISHED", "FAILED", "KILLED") for r in found):
            return found
        repro(["sync", "--experiment", experiment], env)
        time.sleep(1)
    raise AssertionError(f"runs {flt!r} not terminal after {timeout}s: {[r.info.status for r in runs(flt, experiment)]}")


@pytest.fixture
def env(cli_env) -> dict:
    return dict(cli_env, PYTHONUNBUFFERED="1", COLUMNS="200")
