"""The `repro-local-first:` scheme's entry points (pyproject.toml): MLflow's tracking store and model
registry store inside a repro run (runtime/localfirst.py, runtime/registration.py).

MLflow takes the registry URI from the tracking URI, so the entry point's registry is
`repro-local-first:///<offline dir>` too, unless the user set `MLFLOW_REGISTRY_URI`. Imported by MLflow
at its registration of entry points (inside `import mlflow`): stdlib only at the top.

An entry point that runs in another environment (a project's python_env.yaml or conda env, built by
envs/project_env.py) finds the scheme through `scheme_path()` on its PYTHONPATH: this package (a link)
and a distribution holding only the scheme's two entry points.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path


SCHEME = "repro-local-first"


def local_first_registry(store_uri: str | None = None, tracking_uri: str | None = None):
    """MLflow's registry-store builder for `repro-local-first:///<offline dir>` (runtime/registration.py)."""
    from .registration import LocalFirstRegistry  # noqa: PLC0415

    return LocalFirstRegistry(store_uri, tracking_uri)


def local_first_tracking(store_uri: str | None = None, artifact_uri: str | None = None):
    """MLflow's tracking-store builder for `repro-local-first:///<offline dir>` (runtime/localfirst.py;
    imported here, not at MLflow's registration of entry points, which runs inside `import mlflow`)."""
    from .localfirst import LocalFirstStore  # noqa: PLC0415

    return LocalFirstStore(store_uri, artifact_uri)


def available(group: str = "mlflow.model_registry_store") -> bool:
    """True when MLflow can find this package's `SCHEME` in entry point `group` (`mlflow.tracking_store`:
    runtime/localfirst.py): repro-mlflow is installed (not a runtime zip on PYTHONPATH)."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        return any(e.group == group and e.name == SCHEME for e in distribution("repro-mlflow").entry_points)
    except (PackageNotFoundError, OSError):
        return False


DIST = "repro_mlflow_local_first-0.dist-info"  # the scheme alone, for another environment's MLflow


def foreign_env(environ: dict[str, str]) -> str | None:
    """The prefix of the entry point's own environment (VIRTUAL_ENV / CONDA_PREFIX, as envs/project_env.py
    sets them) when it is not this interpreter's, else None."""
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = environ.get(var)
        if prefix and Path(prefix).resolve() != Path(sys.prefix).resolve():
            return prefix
    return None


def scheme_path(cache: Path) -> Path:
    """A directory (made once in `cache`) that, put on PYTHONPATH, gives another environment's MLflow this
    package's scheme: a link to the package, and a distribution with only the scheme's entry points."""
    package = Path(__file__).resolve().parent.parent
    final = Path(cache) / f"scheme-{hashlib.sha256(str(package).encode()).hexdigest()[:12]}"
    if (final / DIST / "entry_points.txt").is_file():
        return final
    Path(cache).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=cache))
    tmp.chmod(0o755)
    (tmp / package.name).symlink_to(package, target_is_directory=True)
    (tmp / DIST).mkdir()
    (tmp / DIST / "METADATA").write_text("Metadata-Version: 2.1\nName: repro_mlflow_local_first\nVersion: 0\n")
    module = f"{package.name}.runtime.registry"
    (tmp / DIST / "entry_points.txt").write_text(
        f"[mlflow.tracking_store]\n{SCHEME} = {module}:local_first_tracking\n\n"
        f"[mlflow.model_registry_store]\n{SCHEME} = {module}:local_first_registry\n")
    try:
        os.rename(tmp, final)  # concurrent first runs: one rename wins, both directories are complete
    except OSError:
        import shutil  # noqa: PLC0415

        shutil.rmtree(tmp, ignore_errors=True)
    return final
