"""Pack a project once per batch: a copy of its files in the batch's staging directory.

In a git checkout the files are what git would keep (`git ls-files --cached --others
--exclude-standard`: tracked plus untracked-but-not-ignored); elsewhere every file except version
control, caches and MLflow/repro state (`.git`, `__pycache__`, `mlruns`, `mlartifacts`, `.repro`,
`mlflow.db`, `*.pyc`) and the batch directory itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_SKIP_DIRS = {".git", "__pycache__", "mlruns", "mlartifacts", ".repro", ".venv", ".pytest_cache"}
_SKIP_FILES = {"mlflow.db"}


def project_files(project_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Relative paths of the files to stage."""
    project_dir = Path(project_dir).resolve()
    exclude = Path(exclude).resolve() if exclude else None
    files = _git_files(project_dir)
    if files is None:
        files = []
        for root, dirs, names in os.walk(project_dir):
            r = Path(root)
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and (exclude is None or (r / d).resolve() != exclude)]
            files += [(r / n).relative_to(project_dir) for n in names
                      if n not in _SKIP_FILES and not n.endswith(".pyc")]
    if exclude is not None and exclude.is_relative_to(project_dir):
        ex = exclude.relative_to(project_dir)
        files = [f for f in files if not f.is_relative_to(ex)]
    return files


def _git_files(project_dir: Path) -> list[Path] | None:
    try:
        p = subprocess.run(["git", "-C", str(project_dir), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    return [Path(f) for f in p.stdout.decode().split("\0") if f and (project_dir / f).is_file()]


def stage_project(project_dir: Path, dest: Path, exclude: Path | None = None) -> int:
    """Copy the project's files into `dest` (created); return how many were copied."""
    project_dir = Path(project_dir).resolve()
    files = project_files(project_dir, exclude)
    made: set[Path] = set()
    for rel in files:
        target = dest / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        shutil.copy2(project_dir / rel, target)
    return len(files)
