"""Software probe: OS, kernel, libc, Python build, library versions and builds, container.

Versions come from the installed distributions' `.dist-info` names on `sys.path` (no import, no
metadata file read); framework build info (CUDA, cuDNN) only from frameworks the process has
already imported (`sys.modules`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

# Tag name -> distributions that provide it, first found wins (tensorflow-cpu etc. are tensorflow).
FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
                   "tensorflow-aarch64", "tensorflow-cpu-aws", "tf-nightly", "tf-nightly-cpu", "tf-nightly-gpu"),
    "keras": ("keras", "keras-nightly"),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "torch": ("torch",),
    "nnunetv2": ("nnunetv2",),
    "mlflow": ("mlflow", "mlflow-skinny"),
}
# Distributions whose version moves numerics: CUDA/cuDNN/BLAS wheels and accelerator plugins.
_NUMERIC_LIB = re.compile(r"^(nvidia-(?!ml-py)[a-z0-9-]+|jax-cuda\d+-(plugin|pjrt)|jax-rocm\d+-(plugin|pjrt)|"
                          r"cupy(-cuda\d+x?)?|mkl|intel-openmp|scipy-openblas\d*|tensorflow-io-gcs-filesystem|"
                          r"triton|onednn.*|openvino)$")


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(paths: Iterable[str] | None = None) -> dict[str, str]:
    """{distribution: version} from `*.dist-info`/`*.egg-info` names in `paths` (default sys.path)."""
    out: dict[str, str] = {}
    for p in (sys.path if paths is None else paths):
        try:
            entries = os.scandir(p or ".")
        except OSError:
            continue
        with entries:
            for e in entries:
                for suffix in (".dist-info", ".egg-info"):
                    if e.name.endswith(suffix):
                        parts = e.name[: -len(suffix)].split("-")
                        if len(parts) >= 2:
                            out.setdefault(normalize(parts[0]), parts[1])
    return dict(sorted(out.items()))


def frameworks(dists: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """{tag name: {"dist": distribution, "version": version}} for the frameworks installed."""
    out = {}
    for tag, names in FRAMEWORKS.items():
        for n in names:
            if n in dists:
                out[tag] = {"dist": n, "version": dists[n]}
                break
    return out


def numeric_libs(dists: Mapping[str, str]) -> dict[str, str]:
    """CUDA, cuDNN, BLAS and accelerator-plugin distributions with their versions."""
    return {n: v for n, v in dists.items() if _NUMERIC_LIB.match(n)}


def packages_hash(dists: Mapping[str, str]) -> str:
    """sha256 (first 16 hex) of the sorted `name==version` lines of every installed distribution."""
    text = "\n".join(f"{n}=={v}" for n, v in sorted(dists.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def builds(modules: Mapping[str, object] | None = None, dists: Mapping[str, str] | None = None) -> dict:
    """CUDA/cuDNN builds of frameworks: from already-imported modules, else from wheel version tags."""
    modules = sys.modules if modules is None else modules
    dists = dists or {}
    out: dict = {}
    tf = modules.get("tensorflow")
    if tf is not None:
        try:
            info = dict(tf.sysconfig.get_build_info())
            out["tensorflow"] = {k: str(info[k]) for k in ("cuda_version", "cudnn_version", "is_cuda_build",
                                                           "is_rocm_build") if k in info}
        except Exception:  # noqa: BLE001
            pass
    torch = modules.get("torch")
    if torch is not None:
        try:
            out["torch"] = {"cuda_version": getattr(torch.version, "cuda", None),
                            "hip_version": getattr(torch.version, "hip", None),
                            "cudnn_version": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None}
        except Exception:  # noqa: BLE001
            pass
    elif "torch" in dists and "+" in dists["torch"]:  # wheel tag: 2.5.1+cu121, 2.13.0+cpu
        local = dists["torch"].split("+", 1)[1]
        m = re.fullmatch(r"cu(\d+)(\d)", local)
        out["torch"] = {"wheel": local, "cuda_version": f"{m.group(1)}.{m.group(2)}" if m else None}
    return out


def cuda_version(b: Mapping[str, dict], dists: Mapping[str, str]) -> str | None:
    """The CUDA runtime frameworks were built with (TensorFlow, then PyTorch, then NVIDIA wheels)."""
    for fw in ("tensorflow", "torch"):
        v = (b.get(fw) or {}).get("cuda_version")
        if v and v != "None":
            return str(v)
    for n in sorted(dists):
        if re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", n):
            return ".".join(dists[n].split(".")[:2])
    return None


def libc() -> str | None:
    """C library and version, e.g. glibc-2.36 (confstr is instant; libc_ver() scans the binary)."""
    try:
        v = os.confstr("CS_GNU_LIBC_VERSION")
        if v:
            return v.replace(" ", "-")
    except (AttributeError, ValueError, OSError):
        pass
    return "-".join(x for x in platform.libc_ver() if x) or None


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


def _containerenv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() in ("engine", "name", "image", "imageid"):
            out[k.strip()] = v.strip().strip('"')
    return out


def probe_container(environ: Mapping[str, str] | None = None, root: str | Path = "/",
                    job_ad: Mapping[str, str] | None = None) -> dict | None:
    """Container runtime, image and digest: Apptainer/Singularity env, Docker `/.dockerenv`,
    Podman `/run/.containerenv`, the HTCondor job ad, and `REPRO_CONTAINER_IMAGE`/`_DIGEST`."""
    environ = os.environ if environ is None else environ
    root = Path(root)
    job_ad = job_ad or {}
    out: dict = {}
    for prefix in ("APPTAINER", "SINGULARITY"):
        if environ.get(f"{prefix}_CONTAINER") or environ.get(f"{prefix}_NAME"):
            out["runtime"] = prefix.lower()
            out["image"] = environ.get(f"{prefix}_NAME") or os.path.basename(environ[f"{prefix}_CONTAINER"])
            out["path"] = environ.get(f"{prefix}_CONTAINER")
            break
    if not out:
        try:
            cenv = _containerenv((root / "run/.containerenv").read_text())
            out = {"runtime": cenv.get("engine", "podman").split("-")[0], "image": cenv.get("image"),
                   "digest": cenv.get("imageid")}
        except OSError:
            if (root / ".dockerenv").exists():
                out = {"runtime": "docker"}
    image = job_ad.get("ContainerImage") or job_ad.get("SingularityImage") or job_ad.get("DockerImage")
    if image:
        out.setdefault("runtime", "htcondor")
        out["image"] = out.get("image") or image
        out["job_ad_image"] = image
    if environ.get("REPRO_CONTAINER_IMAGE"):
        out["image"] = environ["REPRO_CONTAINER_IMAGE"]
    if environ.get("REPRO_CONTAINER_DIGEST"):
        out["digest"] = environ["REPRO_CONTAINER_DIGEST"]
    if out.get("image") and "@sha256:" in out["image"] and not out.get("digest"):
        out["digest"] = "sha256:" + out["image"].split("@sha256:", 1)[1]
    return {k: v for k, v in out.items() if v} or None


def probe_software(environ: Mapping[str, str] | None = None, job_ad: Mapping[str, str] | None = None) -> dict:
    """Describe the software stack of this process."""
    dists = installed()
    b = builds(dists=dists)
    return {
        "os": os_release(),
        "kernel": platform.release(),
        "libc": libc(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "python_compiler": platform.python_compiler(),
        "frameworks": frameworks(dists),
        "numeric_libs": numeric_libs(dists),
        "builds": b,
        "cuda": cuda_version(b, dists),
        "packages_count": len(dists),
        "packages_hash": packages_hash(dists),
        "container": probe_container(environ, job_ad=job_ad),
    }
