"""What a later rerun needs to re-create a run's project: a digest of the files a batch ships, and
the git commit they came from.

The digest covers the same files every backend ships (`schedulers/staging.select_files`: git's list
or a walk, credentials and junk left out), by relative path and content, so a project that is
byte-for-byte the same digests the same wherever it lies. A file over `FULL_HASH_MAX` is digested by
its size and its first and last MiB (a dataset that large is read once per batch otherwise).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from .. import tags as T
from ..schedulers.staging import select_files

FULL_HASH_MAX = 64 << 20
_EDGE = 1 << 20


def _file_digest(path: Path) -> bytes:
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        if size <= FULL_HASH_MAX:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"size:{size}".encode())
            h.update(f.read(_EDGE))
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))
    return h.digest()


def project_digest(project_dir: Path) -> str:
    """Short digest of the project as a batch ships it (paths and contents)."""
    staged = select_files(project_dir)
    h = hashlib.sha256()
    for rel in sorted(staged.files, key=lambda p: p.as_posix()):
        h.update(rel.as_posix().encode() + b"\0")
        h.update(_file_digest(staged.root / rel))
    return h.hexdigest()[:16]


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        p = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def project_tags(project_dir: Path) -> dict[str, str]:
    """The `repro.project.*` tags of a batch's runs: digest, and commit + dirty in a git checkout."""
    tags = {T.PROJECT_DIGEST: project_digest(project_dir)}
    commit = _git(project_dir, "rev-parse", "HEAD")
    if commit:
        tags[T.PROJECT_COMMIT] = commit
        status = _git(project_dir, "status", "--porcelain", "--untracked-files=normal", "--", ".")
        tags[T.PROJECT_DIRTY] = "true" if status else "false"
    return tags


__all__ = ["project_digest", "project_tags"]
