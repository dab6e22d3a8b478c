"""Software environments: one virtualenv per `software/` entry (or per MLflow project's python_env.yaml), built once
with pip, cached by the hash of its requirements.

An entry with no pins (`current`) is the submitting environment itself: no new venv. Otherwise the
venv holds the pins plus what the runtime and the examples need (`BASE`, at the submitter's
versions unless a pin names the same package). It lives under `env_cache()/<hash>` and is built
by the machine's own pip (its config, index and cache), under a lock, into a temporary directory
that is renamed into place only when the install succeeded, so a half-built env is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import ReproError

# What every software env needs besides its pins: the runtime (mlflow) and the examples (keras, mlxtend).
BASE = ("mlflow", "keras", "mlxtend")


@dataclass(frozen=True)
class Software:
    """A `software/` entry: a name, pip requirement pins, or a container image."""

    name: str = "current"
    pins: tuple[str, ...] = ()
    image: str | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> Software:
        d = dict(d or {})
        unknown = set(d) - {"name", "pins", "image"}
        if unknown:
            raise ReproError(f"software entry: unknown key(s) {', '.join(sorted(unknown))} (known: image, name, pins)")
        pins = d.get("pins") or []
        if isinstance(pins, str) or not all(isinstance(p, str) for p in pins):
            raise ReproError(f"software '{d.get('name')}': pins must be a list of pip requirements")
        return cls(str(d.get("name") or "current"), tuple(pins), d.get("image") or None)

    @property
    def is_current(self) -> bool:
        return not self.pins and not self.image

    def identity(self) -> dict:
        """What defines this software for the config hash: pins and image (the name is only a label)."""
        return {"pins": sorted(self.pins), "image": self.image} if not self.is_current else {"current": True}


def env_cache() -> Path:
    """`$REPRO_ENV_CACHE`, else `$XDG_CACHE_HOME/repro-mlflow/envs` (default ~/.cache/repro-mlflow/envs)."""
    if os.environ.get("REPRO_ENV_CACHE"):
        return Path(os.environ["REPRO_ENV_CACHE"]).expanduser().resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "repro-mlflow" / "envs").resolve()


def _canon(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else req


def requirements(sw: Software) -> list[str]:
    """The full pip requirement list of the env: BASE at the submitter's versions, overridden by the pins."""
    pinned = {_canon(p) for p in sw.pins}
    base = []
    for name in BASE:
        if _canon(name) in pinned:
            continue
        try:
            base.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            base.append(name)
    return sorted(base) + sorted(sw.pins)


def venv_hash(requirements: list[str], python_version: str | None = None, extra: str = "") -> str:
    """Hash of everything that defines a virtualenv: Python major.minor, the requirement list (and `extra`)."""
    key = {"python": python_version or "%d.%d" % sys.version_info[:2], "requirements": list(requirements)}
    if extra:
        key["extra"] = extra
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def env_hash(sw: Software) -> str:
    """Hash of everything that defines the env: Python version and the requirement list."""
    return venv_hash(requirements(sw))


def env_python(sw: Software) -> Path:
    return env_cache() / env_hash(sw) / "bin" / "python"


def is_built(sw: Software) -> bool:
    return sw.is_current or (env_cache() / env_hash(sw) / "repro-env.json").is_file()


def ensure_env(sw: Software, log=None) -> str | None:
    """The python of `sw`'s env, building it first if needed; None for `current` or a container image.

    Raises ReproError (one line, pip's own complaint in it) when a pin cannot be installed.
    """
    if sw.is_current or (sw.image and not sw.pins):
        return None
    return ensure_venv(f"software '{sw.name}'", requirements(sw), env_hash(sw), wanted=", ".join(sw.pins), log=log)


def ensure_venv(what: str, reqs: list[str], h: str, *, wanted: str = "", python: str | None = None,
                cwd: Path | None = None, log=None) -> str:
    """The python of the virtualenv `env_cache()/h` holding `reqs`, built first (once, under a lock) if needed.

    what: how errors and the log name the env ("software 'tf2_8'", "project environment (python_env.yaml)");
    python: the interpreter to make it from (default this one); cwd: where pip runs (for `-r file` lines).
    """
    cache = env_cache()
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / h
    marker = final / "repro-env.json"
    if marker.is_file():
        return str(final / "bin" / "python")
    with open(cache / f"{h}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per env, even across sweeps
        if marker.is_file():
            return str(final / "bin" / "python")
        _build(what, reqs, wanted or ", ".join(reqs), cache, h, python or sys.executable, cwd, log)
    return str(final / "bin" / "python")


def _build(what: str, reqs: list[str], wanted: str, cache: Path, h: str, python: str, cwd: Path | None, log) -> None:
    tmp = cache / f"{h}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    logfile = cache / f"{h}.log"
    if log:
        log(f"building {what} ({wanted}) in {cache / h} (log: {logfile})")
    t0 = time.time()
    with open(logfile, "w") as out:
        _run([python, "-m", "venv", str(tmp)], out, what, wanted, logfile)
        # Relocatable enough: the venv is renamed below, so scripts' shebangs are not used; python -m is.
        if reqs:
            _run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--no-input", *reqs], out, what, wanted, logfile,
                 cwd)
    (tmp / "repro-env.json").write_text(json.dumps({
        "name": what, "requirements": reqs, "hash": h,
        "built_s": round(time.time() - t0, 1), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=1))
    final = cache / h
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    _fix_venv_paths(final, tmp)


def _fix_venv_paths(final: Path, old: Path) -> None:
    """Point the renamed venv's activation scripts and console-script shebangs at its new place."""
    for f in (final / "bin").iterdir():
        if f.is_file() and not f.is_symlink():
            try:
                text = f.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if str(old) in text:
                f.write_text(text.replace(str(old), str(final)))


def _run(cmd: list[str], out, what: str, wanted: str, logfile: Path, cwd: Path | None = None) -> None:
    out.write("$ " + " ".join(cmd) + "\n")
    out.flush()
    proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
    if proc.returncode != 0:
        text = logfile.read_text(errors="replace")
        why = [ln.strip() for ln in text.splitlines() if ln.startswith("ERROR:")]
        detail = why[0] if why else f"exit code {proc.returncode}"
        raise ReproError(f"{what}: could not install {wanted}: {detail} (log: {logfile})")
