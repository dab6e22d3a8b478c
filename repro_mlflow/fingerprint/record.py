"""Assemble the fingerprint record, its tags and its stable hashes."""

from __future__ import annotations

import hashlib
import json
import os
import socket

from .cpu import probe_cpu
from .software import probe_software

# Environment variables that steer determinism; only these are ever recorded (allow-list).
DETERMINISM_ENV = (
    "TF_DETERMINISTIC_OPS", "TF_ENABLE_ONEDNN_OPTS", "TF_CUDNN_DETERMINISTIC", "CUBLAS_WORKSPACE_CONFIG",
    "XLA_FLAGS", "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "KERAS_BACKEND", "NVIDIA_TF32_OVERRIDE", "CUDA_VISIBLE_DEVICES", "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def capture() -> dict:
    """Measure this machine: cpu, software, site and the determinism settings in force."""
    return {
        "schema": 1,
        "cpu": probe_cpu(),
        "gpu": [],
        "software": probe_software(),
        "site": {"host": socket.gethostname()},
        "determinism_env": {k: os.environ[k] for k in DETERMINISM_ENV if k in os.environ},
    }


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def hashes(record: dict) -> dict[str, str]:
    """The three short stable hashes: hw (CPU model + numerics flags, GPUs), sw (versions), env (both + determinism)."""
    cpu = record.get("cpu", {})
    hw = {"cpu": [cpu.get("vendor"), cpu.get("model"), cpu.get("flags")],
          "gpu": [[g.get("name"), g.get("compute_capability")] for g in record.get("gpu", [])]}
    sw_rec = record.get("software", {})
    sw = {"packages": sw_rec.get("packages"), "python": sw_rec.get("python"), "libc": sw_rec.get("libc")}
    env = {"hw": hw, "sw": sw, "det": record.get("determinism_env", {})}
    return {"hw": _digest(hw), "sw": _digest(sw), "env": _digest(env)}


def to_tags(record: dict) -> dict[str, str]:
    """Short `repro.*` tags for a record."""
    from ..tags import short

    cpu, sw = record.get("cpu", {}), record.get("software", {})
    h = hashes(record)
    tags = {
        "repro.fp.hw": h["hw"], "repro.fp.sw": h["sw"], "repro.fp.env": h["env"],
        "repro.host": record.get("site", {}).get("host"),
        "repro.hw.cpu.vendor": cpu.get("vendor"), "repro.hw.cpu.model": cpu.get("model"),
        "repro.hw.cpu.count": cpu.get("logical_cores"), "repro.hw.cpu.arch": cpu.get("arch"),
        "repro.hw.cpu.flags": ",".join(cpu.get("flags", [])),
        "repro.sw.os": sw.get("os"), "repro.sw.kernel": sw.get("kernel"), "repro.sw.python": sw.get("python"),
    }
    for name, version in (sw.get("packages") or {}).items():
        tags[f"repro.sw.{name}"] = version
    return {k: short(v) for k, v in tags.items() if v not in (None, "")}
