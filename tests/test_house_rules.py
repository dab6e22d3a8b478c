"""House rules checked in CI: ruff over the repository, mypy over the typed public modules (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    r = run("ruff", "check", "--no-cache", "--output-format=concise", ".")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]


def test_mypy_finds_nothing_in_the_typed_modules():
    r = run("mypy", "--no-incremental", "--cache-dir=/dev/null")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    assert "Success" in r.stdout


def test_the_rules_see_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef f(x: int) -> str:\n    return x\n")
    assert run("ruff", "check", "--no-cache", str(bad)).returncode == 1  # F401 unused import
    assert run("mypy", "--no-incremental", "--cache-dir=/dev/null", str(bad)).returncode == 1
