"""What a later rerun needs to re-create a run's project: a digest of the files a batch ships, and
the git commit they came from.

The digest covers the same files every backend ships (`schedulers/staging.select_files`: git's list
or a walk, credentials and junk left out), by relative path and content, so a project that is
byte-for-byte the same digests the same wherever it lies. The per-file listing is kept beside the batch
record (`project_files.json`), so a rerun can tell a changed file from a run's own outputs. A file over `FULL_HASH_MAX` is digested by
its size and its first and last MiB (a dataset that large is read once per batch otherwise).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from .. import tags as T
from ..schedulers.staging import select_files

FULL_HASH_MAX = 64 << 20
LISTING_FILE = "project_files.json"
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


def file_digests(project_dir: Path) -> dict[str, str]:
    """{relative path: short digest} of the project's files as a batch ships them."""
    staged = select_files(project_dir)
    return {rel.as_posix(): _file_digest(staged.root / rel).hex()[:16] for rel in staged.files}


def digest_of(files: dict[str, str]) -> str:
    """The project digest (tag repro.project.digest) of a `file_digests` listing."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]}\n".encode())
    return h.hexdigest()[:16]


def project_digest(project_dir: Path) -> str:
    """Short digest of the project as a batch ships it (paths and contents)."""
    return digest_of(file_digests(project_dir))


def changed_files(project_dir: Path, recorded: dict[str, str]) -> list[str]:
    """The recorded files that are missing or different in `project_dir` now (files added since are not counted:
    a run's own outputs written into its project are not a change of the project)."""
    now = file_digests(project_dir)
    return sorted(rel for rel, d in recorded.items() if now.get(rel) != d)


def write_listing(workdir: Path, files: dict[str, str]) -> Path:
    """Keep a batch's file listing beside its record (`project_files.json`), for `repro rerun`."""
    path = Path(workdir) / LISTING_FILE
    path.write_text(json.dumps(files, indent=0, sort_keys=True))
    return path


def read_listing(workdir: Path) -> dict[str, str] | None:
    """A batch's file listing, or None when it kept none (made by an earlier repro-mlflow)."""
    path = Path(workdir) / LISTING_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        p = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def project_tags(project_dir: Path, files: dict[str, str] | None = None) -> dict[str, str]:
    """The `repro.project.*` tags of a batch's runs: digest, and commit + dirty in a git checkout."""
    tags = {T.PROJECT_DIGEST: digest_of(files if files is not None else file_digests(project_dir))}
    commit = _git(project_dir, "rev-parse", "HEAD")
    if commit:
        tags[T.PROJECT_COMMIT] = commit
        status = _git(project_dir, "status", "--porcelain", "--untracked-files=normal", "--", ".")
        tags[T.PROJECT_DIRTY] = "true" if status else "false"
    return tags


__all__ = ["changed_files", "digest_of", "file_digests", "project_digest", "project_tags", "read_listing", "write_listing"]
