"""What a batch sends to the execute point: the repro runtime as a zip (used from PYTHONPATH), the
project as a tarball, and the job wrapper."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from ...errors import ReproError

PACKAGE = Path(__file__).resolve().parents[2]  # repro_mlflow/
SKIP_DIRS = {".git", ".repro", ".venv", "venv", "__pycache__", "mlruns", "mlartifacts", "outputs", "multirun",
             ".pytest_cache", ".mypy_cache", "node_modules", ".ipynb_checkpoints"}
SKIP_FILES = {"mlflow.db"}
MAX_PROJECT_BYTES = 1 << 30  # beyond this, input transfer through the access point is the wrong tool (use OSDF)


def pack_runtime(dest: Path) -> Path:
    """Zip the pure-Python `repro_mlflow` package (no caches) to `dest`; importable straight from the zip."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE.rglob("*.py")):
            if "__pycache__" not in path.parts:
                zf.write(path, Path("repro_mlflow") / path.relative_to(PACKAGE))
    return dest


def pack_project(project_dir: Path, dest: Path, skip: tuple[Path, ...] = ()) -> Path:
    """Tar the project directory to `dest`, without VCS data, stores, caches, virtualenvs or `skip` paths."""
    project_dir = Path(project_dir).resolve()
    skip_set = {Path(p).resolve() for p in skip} | {Path(dest).resolve()}
    total = 0
    with tarfile.open(dest, "w:gz") as tar:
        for root, dirs, files in os.walk(project_dir):
            rootp = Path(root)
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and (rootp / d).resolve() not in skip_set)
            for name in sorted(files):
                path = rootp / name
                if name in SKIP_FILES or name.endswith(".pyc") or path.resolve() in skip_set or not path.is_file():
                    continue
                total += path.stat().st_size
                if total > MAX_PROJECT_BYTES:
                    raise ReproError(f"the project in {project_dir} is over 1 GiB; keep data out of it (stage it on OSDF)")
                tar.add(path, arcname=str(path.relative_to(project_dir)), recursive=False)
    return dest


def install_wrapper(dest: Path) -> Path:
    """Copy the job wrapper (`job.py`) to `dest`, executable."""
    shutil.copyfile(Path(__file__).with_name("job.py"), dest)
    dest.chmod(0o755)
    return dest
