"""Stage a project for a batch: one file list and one skip rule for every scheduler that ships it.

Slurm copies the staged files into the batch's job directory, HTCondor tars them into the cluster's
input files, EC2 tars them into the batch's S3 upload; the local scheduler stages nothing (it runs
in the project folder itself, on the submitting machine).

Which files: in a git checkout, git's list (tracked plus untracked-but-not-ignored, `git ls-files
--cached --others --exclude-standard`); elsewhere (or when git lists nothing there) a walk of the
folder. From either list the same rule then leaves out

- credentials, never shipped, tracked in git or not (`CREDENTIAL_DIRS`, `CREDENTIAL_NAMES`; a symlink
  to one too). What was left out as a credential is said once at submit, as one line on stderr:
  `repro: not shipped: .env, .aws/ (credentials)`;
- version control, stores, caches and virtualenvs (`JUNK_DIRS`, `JUNK_NAMES`), silently;
- the caller's own paths (`exclude`: the batch directory when it lies inside the project).
"""

from __future__ import annotations

import fnmatch
import io
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from collections.abc import Iterable

from ..errors import ReproError

# Folders that hold credentials: nothing under them is shipped.
CREDENTIAL_DIRS = frozenset({
    ".aws", ".ssh", ".kube", ".gnupg", ".docker", ".azure", ".databricks", ".env",  # .env: dotenv files or a venv
    "tokens.d",  # HTCondor IDTOKENS
})
# Nested credential folders, by their last two parts (gcloud's and GitHub CLI's config folders).
CREDENTIAL_SUBDIRS = frozenset({(".config", "gcloud"), (".config", "gh")})
# File names that are credentials, as shell patterns on the lower-cased name.
CREDENTIAL_NAMES = (
    ".env", ".env*", "*.env",  # dotenv files
    ".netrc", "_netrc", ".git-credentials", ".databrickscfg", ".pypirc", ".npmrc", ".pgpass", ".s3cfg",
    ".boto", ".dockercfg",
    "credentials", "*credentials.json", "client_secret*.json", "kaggle.json",  # .mlflow/credentials, .aws/credentials
    "secrets.toml", "secrets.json", "secrets.yaml", "secrets.yml",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.keytab",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "token", ".token", "*.token", "*_token", "*-token", "token.txt", "*_token.txt", "*-token.txt",
)
# Version control, MLflow/repro state, Hydra outputs, caches, virtualenvs: never useful on a worker.
JUNK_DIRS = frozenset({
    ".git", ".hg", ".svn", ".repro", ".venv", "venv", "__pycache__", "mlruns", "mlartifacts", "outputs", "multirun",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", "node_modules", ".ipynb_checkpoints",
})
JUNK_NAMES = ("mlflow.db", "*.pyc", ".DS_Store")

_NOTICE_MAX = 30  # names in the one line; beyond, a count
_announced: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class StagedFiles:
    """What a batch ships of a project: `files` (relative to `root`), and the credentials left out."""

    root: Path
    files: tuple[Path, ...]
    withheld: tuple[str, ...]  # credentials left out, each as a file (`.env`) or its folder (`.aws/`)
    listing: str  # "git" or "walk"

    def notice(self) -> str | None:
        """The one line said at submit, or None when no credential was left out."""
        if not self.withheld:
            return None
        shown = list(self.withheld[:_NOTICE_MAX])
        if len(self.withheld) > _NOTICE_MAX:
            shown.append(f"and {len(self.withheld) - _NOTICE_MAX} more")
        return f"repro: not shipped: {', '.join(shown)} (credentials)"


def _matches(name: str, patterns: Iterable[str]) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, p) for p in patterns)


def is_junk(rel: PurePosixPath) -> bool:
    """Version control, a store, a cache or a virtualenv (or anything under one)."""
    *dirs, name = rel.parts
    return any(d in JUNK_DIRS for d in dirs) or name in JUNK_DIRS or _matches(name, JUNK_NAMES)


def credential(rel: PurePosixPath) -> str | None:
    """The credential `rel` is or lies in, as it is reported (`.env`, `conf/.aws/`), or None."""
    parts = rel.parts
    for i, d in enumerate(parts[:-1]):
        if d in CREDENTIAL_DIRS or (i and (parts[i - 1], d) in CREDENTIAL_SUBDIRS):
            return "/".join(parts[: i + 1]) + "/"
    return str(rel) if _matches(parts[-1], CREDENTIAL_NAMES) else None


def _points_at_credential(path: Path) -> bool:
    """A symlink whose target is a credential (`creds.ini -> ~/.aws/credentials`)."""
    if not path.is_symlink():
        return False
    target = PurePosixPath(path.resolve().as_posix())
    return credential(PurePosixPath(*target.parts[1:])) is not None


def _git_files(project_dir: Path) -> list[str] | None:
    try:
        p = subprocess.run(["git", "-C", str(project_dir), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    return [os.fsdecode(f) for f in p.stdout.split(b"\0") if f] or None


def _walk_files(project_dir: Path) -> list[str]:
    out: list[str] = []
    for root, dirs, names in os.walk(project_dir):
        rel = PurePosixPath(Path(root).relative_to(project_dir).as_posix())
        dirs[:] = [d for d in dirs if d not in JUNK_DIRS]
        out += [str(rel / n) for n in names]
    return out


def _normalize(exclude: Path | Iterable[Path] | None) -> list[Path]:
    if exclude is None:
        return []
    return [Path(p).resolve() for p in ([exclude] if isinstance(exclude, (str, os.PathLike)) else exclude)]


def select_files(project_dir: Path, exclude: Path | Iterable[Path] | None = None) -> StagedFiles:
    """The project's files to ship and the credentials left out, by the one rule (module docstring)."""
    root = Path(project_dir).resolve()
    if not root.is_dir():
        raise ReproError(f"the project directory {project_dir} does not exist")
    skip = [p for p in _normalize(exclude) if p.is_relative_to(root)]
    names = _git_files(root)
    listing = "git" if names is not None else "walk"
    if names is None:
        names = _walk_files(root)
    files: list[Path] = []
    withheld: set[str] = set()
    for name in sorted(set(names)):
        rel = PurePosixPath(name)
        if rel.parts[:1] == (".",):
            rel = PurePosixPath(*rel.parts[1:])
        path = root / rel
        if is_junk(rel) or any(path.is_relative_to(s) for s in skip) or not path.is_file():
            continue
        found = credential(rel) or (str(rel) if _points_at_credential(path) else None)
        if found:
            withheld.add(found)
        else:
            files.append(Path(rel))
    return StagedFiles(root, tuple(files), tuple(sorted(withheld)), listing)


def announce(staged: StagedFiles) -> None:
    """Say on stderr, once per project and process, which credentials are not shipped."""
    line = staged.notice()
    if line and (str(staged.root), line) not in _announced:
        _announced.add((str(staged.root), line))
        print(line, file=sys.stderr, flush=True)


def _check_size(staged: StagedFiles, max_bytes: int | None) -> None:
    if max_bytes is None:
        return
    total = sum((staged.root / f).stat().st_size for f in staged.files)
    if total > max_bytes:
        raise ReproError(f"the project in {staged.root} is {_size(total)}, over the {_size(max_bytes)} a batch ships; "
                         "keep large data out of it")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def stage_project(project_dir: Path, dest: Path, exclude: Path | Iterable[Path] | None = None) -> StagedFiles:
    """Copy the project's staged files into `dest` (created); say what was not shipped."""
    staged = select_files(project_dir, [*_normalize(exclude), Path(dest)])
    announce(staged)
    made: set[Path] = set()
    for rel in staged.files:
        target = Path(dest) / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        shutil.copy2(staged.root / rel, target)
    Path(dest).mkdir(parents=True, exist_ok=True)
    return staged


def tar_project(project_dir: Path, dest: Path | BinaryIO, exclude: Path | Iterable[Path] | None = None,
                max_bytes: int | None = None, arcroot: str = "", quiet: bool = False) -> StagedFiles:
    """Write the project's staged files as a gzipped tarball to `dest` (a path or a binary stream), members
    under `arcroot`; refuse a project over `max_bytes`; say what was not shipped unless `quiet`."""
    extra = [Path(dest)] if isinstance(dest, (str, os.PathLike)) else []
    staged = select_files(project_dir, [*_normalize(exclude), *extra])
    _check_size(staged, max_bytes)
    if not quiet:
        announce(staged)
    tar = tarfile.open(name=str(dest), mode="w:gz", dereference=True) if extra else \
        tarfile.open(fileobj=dest, mode="w:gz", dereference=True)  # type: ignore[arg-type, call-overload]
    with tar:
        for rel in staged.files:
            arcname = (PurePosixPath(arcroot) / rel.as_posix()) if arcroot else PurePosixPath(rel.as_posix())
            tar.add(staged.root / rel, arcname=str(arcname), recursive=False)
    return staged


def tar_bytes(project_dir: Path, exclude: Path | Iterable[Path] | None = None, arcroot: str = "",
              quiet: bool = False) -> bytes:
    """`tar_project` into memory: the tarball's bytes (EC2 uploads them)."""
    buf = io.BytesIO()
    tar_project(project_dir, buf, exclude, arcroot=arcroot, quiet=quiet)
    return buf.getvalue()
