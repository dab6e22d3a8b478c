"""Software probe: OS, kernel, libc, Python and library versions, read without importing frameworks."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = ("numpy", "tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "torch", "mlflow", "mlflow-skinny", "scipy")


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of `names` from package metadata (no imports)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def os_release(text: str | None = None) -> str | None:
    """PRETTY_NAME from /etc/os-release."""
    if text is None:
        try:
            text = Path("/etc/os-release").read_text()
        except OSError:
            return None
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def probe_software() -> dict:
    """Describe the software stack of this process."""
    libc = platform.libc_ver()
    return {
        "os": os_release(),
        "kernel": platform.release(),
        "libc": "-".join(x for x in libc if x) or None,
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "packages": package_versions(),
        "executable": sys.executable,
    }
