"""What a batch sends to the execute point: the repro runtime as a zip (used from PYTHONPATH), the
project as a tarball (staged by `schedulers/staging.py`'s one rule: never a credential), and the job wrapper."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from ..staging import tar_project

PACKAGE = Path(__file__).resolve().parents[2]  # repro_mlflow/
MAX_PROJECT_BYTES = 1 << 30  # beyond this, input transfer through the access point is the wrong tool (use OSDF)


def pack_runtime(dest: Path) -> Path:
    """Zip the pure-Python `repro_mlflow` package (no caches) to `dest`; importable straight from the zip."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE.rglob("*.py")):
            if "__pycache__" not in path.parts:
                zf.write(path, Path("repro_mlflow") / path.relative_to(PACKAGE))
    return dest


def pack_project(project_dir: Path, dest: Path, skip: tuple[Path, ...] = ()) -> Path:
    """Tar the project's staged files (never a credential, no VCS, stores or caches, no `skip` paths) to `dest`;
    refused over `MAX_PROJECT_BYTES`."""
    tar_project(project_dir, dest, exclude=skip, max_bytes=MAX_PROJECT_BYTES)
    return dest


def install_wrapper(dest: Path) -> Path:
    """Copy the job wrapper (`job.py`) to `dest`, executable."""
    shutil.copyfile(Path(__file__).with_name("job.py"), dest)
    dest.chmod(0o755)
    return dest
