"""The environment an MLflow project declares, built as `mlflow run` would, before any run exists.

- `python_env.yaml` (or MLproject's `python_env:`): a virtualenv with its `build_dependencies` and
  `dependencies`, from an interpreter of the Python version it names (this one when the major.minor
  agree, else `pythonX.Y` on PATH), cached by content in the software env cache (`envs/software.py`);
- `conda.yaml` (or `conda_env:`): a conda env made by `conda env create`, cached the same way,
  where conda is on PATH (or `$MLFLOW_CONDA_HOME/bin`);
- nothing declared, or env manager `local` (`mlflow run --env-manager local`, or the backend-config
  key `project_env: local`): the current interpreter, on purpose.

The runtime itself stays in repro's interpreter; the entry point's `python` is the env's, through
PATH (and VIRTUAL_ENV / CONDA_PREFIX), which only schedulers whose nodes see this machine's files
can use (`shared_fs`, a scheduler's capability). Anything that cannot be built is a one-line ReproError naming the way out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import tags as T
from ..errors import ReproError

MANAGERS = ("local", "virtualenv", "conda")
WAY_OUT = "to run in the current interpreter instead: --env-manager local"

ENV_MANAGER_TAG = "repro.project_env.manager"
ENV_FILE_TAG = "repro.project_env.file"
ENV_PREFIX_TAG = "repro.project_env.prefix"


@dataclass(frozen=True)
class ProjectEnv:
    """Where a project's entry point runs: the current interpreter, or a built env's prefix."""

    manager: str  # local | virtualenv | conda
    prefix: str | None = None
    declared: str | None = None  # the file that declares it (python_env.yaml, conda.yaml)
    env: dict = field(default_factory=dict, compare=False)

    def run_env(self) -> dict[str, str]:
        """Environment variables that put the env's interpreter first for the entry point."""
        if not self.prefix:
            return {}
        out = {"PATH": f"{self.prefix}/bin{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
        out["VIRTUAL_ENV" if self.manager == "virtualenv" else "CONDA_PREFIX"] = self.prefix
        return out

    def tags(self) -> dict[str, str]:
        t = {ENV_MANAGER_TAG: self.manager}
        if self.declared:
            t[ENV_FILE_TAG] = Path(self.declared).name
        if self.prefix:
            t[ENV_PREFIX_TAG] = T.short(self.prefix)
        return t


def _python_for(version: str | None) -> str:
    """An interpreter of `version`'s major.minor: this one, else pythonX.Y on PATH."""
    if not version:
        return sys.executable
    m = re.match(r"(\d+)\.(\d+)", str(version))
    if not m:
        raise ReproError(f"python_env.yaml: cannot read the Python version '{version}'")
    want = f"{m.group(1)}.{m.group(2)}"
    if want == "%d.%d" % sys.version_info[:2]:
        return sys.executable
    found = shutil.which(f"python{want}")
    if not found:
        raise ReproError(f"the project's python_env.yaml asks for Python {want} and no python{want} is on PATH: "
                         f"install it, or {WAY_OUT}")
    return found


def _file_digest(project_dir: Path, reqs: list[str]) -> str:
    """Contents of the files `-r`/`-c` lines name, so an edit to requirements.txt builds a new env."""
    h = hashlib.sha256()
    for r in reqs:
        m = re.match(r"\s*(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", r)
        if m:
            p = project_dir / m.group(2)
            h.update(p.read_bytes() if p.is_file() else b"missing")
    return h.hexdigest()


def _virtualenv(project_dir: Path, declared: str, python_env, log) -> ProjectEnv:
    from .software import ensure_venv, venv_hash

    python = _python_for(python_env.python)
    reqs = [str(r) for r in [*python_env.build_dependencies, *python_env.dependencies]]
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip() if python != sys.executable else None
    h = venv_hash(reqs, version, extra=_file_digest(project_dir, reqs))
    what = f"the project environment ({Path(declared).name})"
    try:
        py = ensure_venv(what, reqs, h, python=python, cwd=project_dir, log=log)
    except ReproError as e:
        raise ReproError(f"{e}; {WAY_OUT}") from None
    return ProjectEnv("virtualenv", str(Path(py).parent.parent), declared)


def _conda() -> str | None:
    home = os.environ.get("MLFLOW_CONDA_HOME")
    if home and (Path(home) / "bin" / "conda").is_file():
        return str(Path(home) / "bin" / "conda")
    return shutil.which("conda")


def _conda_env(project_dir: Path, declared: str, log) -> ProjectEnv:
    from .software import env_cache

    conda = _conda()
    if conda is None:
        raise ReproError(f"the project declares a conda environment ({Path(declared).name}) and conda is not on PATH "
                         f"(nor in $MLFLOW_CONDA_HOME): install conda, or {WAY_OUT}")
    h = "conda-" + hashlib.sha256(Path(declared).read_bytes()).hexdigest()[:16]
    prefix = env_cache() / h
    if not (prefix / "conda-meta").is_dir():
        if log:
            log(f"building the project environment ({Path(declared).name}) with conda in {prefix}")
        env_cache().mkdir(parents=True, exist_ok=True)
        p = subprocess.run([conda, "env", "create", "--quiet", "-p", str(prefix), "-f", declared],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            shutil.rmtree(prefix, ignore_errors=True)
            last = (p.stderr or p.stdout or "").strip().splitlines()
            raise ReproError(f"conda could not create {Path(declared).name}: {last[-1] if last else p.returncode}; {WAY_OUT}")
    return ProjectEnv("conda", str(prefix), declared)


def resolve(project_dir: Path, manager: str | None = None, scheduler: str = "local", log=None, shared_fs: bool = True) -> ProjectEnv:
    """The project's environment, built (or found in the cache) now; `manager` as `mlflow run --env-manager`."""
    from mlflow.projects import env_type
    from mlflow.projects._project_spec import load_project

    if manager is not None and manager not in MANAGERS:
        raise ReproError(f"unknown env manager '{manager}' (known: {', '.join(MANAGERS)})")
    project = load_project(str(project_dir))
    declared = project.env_config_path
    if manager == "local":
        return ProjectEnv("local", None, declared)
    if project.env_type == env_type.DOCKER:
        raise ReproError("the project declares docker_env, which the repro backends do not run: use a hardware target "
                         f"with a container image, or {WAY_OUT}")
    if not declared:
        return ProjectEnv("local")  # nothing declared: the current interpreter
    if not shared_fs:  # the scheduler's jobs do not see this machine's env cache
        raise ReproError(f"the project declares {Path(declared).name}, which repro-{scheduler} cannot build on its "
                         f"workers: use a target with a container image, or {WAY_OUT}")
    from mlflow.utils.environment import _PythonEnv

    if project.env_type == env_type.CONDA and manager != "virtualenv":
        return _conda_env(Path(project_dir), declared, log)
    try:
        if project.env_type == env_type.CONDA:
            python_env = _PythonEnv.from_conda_yaml(declared)
        else:
            python_env = _PythonEnv.from_yaml(declared)
    except Exception as e:  # noqa: BLE001 - YAML syntax, a list or a scalar, unknown keys: MLflow's own reader says which
        why = " ".join(str(e).split())[:200] or type(e).__name__
        raise ReproError(f"{Path(declared).name} cannot be read as a python env ({why}); {WAY_OUT}") from None
    if manager == "conda":
        raise ReproError(f"env manager conda for {Path(declared).name} is not supported by the repro backends: "
                         f"use virtualenv (the default), or {WAY_OUT}")
    return _virtualenv(Path(project_dir), declared, python_env, log)
