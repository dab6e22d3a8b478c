"""Assemble the fingerprint record, its stable hashes and its `repro.*` tags.

Hash definitions (docs/fingerprint.md explains the choices):
- hw:  CPU arch, vendor, model and numerics ISA flags; the distinct (GPU model, compute capability) pairs.
- sw:  Python implementation and version, libc, framework versions (mlflow excluded), CUDA/cuDNN/BLAS
       wheels, the container image and digest.
- env: hw and sw, plus the allow-listed determinism variables (device selection excluded).
Each is the first 12 hex digits of sha256 over canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping

from .cpu import probe_cpu
from .determinism import probe_determinism
from .gpu import probe_gpu
from .safety import DEVICE_ENV, redact, secret_values
from .site import probe_site
from .software import probe_software

SCHEMA = 2


def capture(environ: Mapping[str, str] | None = None) -> dict:
    """Measure this machine: cpu, gpu, software, site and the determinism settings in force."""
    environ = os.environ if environ is None else environ
    t0 = time.perf_counter()
    site = probe_site(environ)
    job_ad = ((site.get("condor") or {}).get("job")) or None
    record = {
        "schema": SCHEMA,
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": probe_cpu(),
        "gpu": probe_gpu(environ),
        "software": probe_software(environ, job_ad=job_ad),
        "site": site,
        "determinism": probe_determinism(environ),
    }
    record["hashes"] = hashes(record)
    record["capture_seconds"] = round(time.perf_counter() - t0, 4)
    return redact(record, secret_values(environ))


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def hw_identity(record: Mapping) -> dict:
    """What `repro.fp.hw` hashes."""
    cpu, gpu = record.get("cpu") or {}, record.get("gpu") or {}
    return {"cpu": [cpu.get("arch"), cpu.get("vendor"), cpu.get("model"), sorted(cpu.get("flags") or [])],
            "gpu": sorted([list(m) for m in gpu.get("models") or []])}


def sw_identity(record: Mapping) -> dict:
    """What `repro.fp.sw` hashes."""
    sw = record.get("software") or {}
    container = sw.get("container") or {}
    return {"python": [sw.get("python_impl"), sw.get("python")], "libc": sw.get("libc"),
            "frameworks": {k: v.get("version") for k, v in (sw.get("frameworks") or {}).items() if k != "mlflow"},
            "numeric_libs": sw.get("numeric_libs") or {},
            "container": [container.get("image"), container.get("digest")] if container.get("image") else None}


def env_identity(record: Mapping) -> dict:
    """What `repro.fp.env` hashes."""
    det = {k: v for k, v in ((record.get("determinism") or {}).get("env") or {}).items() if k not in DEVICE_ENV}
    return {"hw": hw_identity(record), "sw": sw_identity(record), "det": det}


def hashes(record: Mapping) -> dict[str, str]:
    """The three short stable hashes {"hw", "sw", "env"}."""
    return {"hw": _digest(hw_identity(record)), "sw": _digest(sw_identity(record)), "env": _digest(env_identity(record))}


CONDOR_TAGS = ("GLIDEIN_Site", "GLIDEIN_ResourceName", "OSGVO_CPU_MODEL", "Microarch", "GPUs_DeviceName",
               "GPUs_Capability", "Name")
SLURM_TAGS = {"SLURM_CLUSTER_NAME": "cluster", "SLURM_JOB_PARTITION": "partition", "SLURMD_NODENAME": "node",
              "SLURM_JOB_ID": "job_id", "SLURM_ARRAY_TASK_ID": "array_task_id"}


def to_tags(record: Mapping) -> dict[str, str]:
    """Short `repro.*` tags for a record (the whole record goes to `repro/fingerprint.json`)."""
    from ..tags import short

    cpu, gpu, sw = record.get("cpu") or {}, record.get("gpu") or {}, record.get("software") or {}
    site = record.get("site") or {}
    h = hashes(record)
    devices = gpu.get("devices") or []
    names = list(dict.fromkeys(d.get("name") for d in devices if d.get("name")))
    ccs = list(dict.fromkeys(d.get("compute_capability") for d in devices if d.get("compute_capability")))
    migs = list(dict.fromkeys(d.get("mig_mode") for d in devices if d.get("mig_mode")))
    container = sw.get("container") or {}
    builds = sw.get("builds") or {}
    cudnn = (builds.get("tensorflow") or {}).get("cudnn_version") or (builds.get("torch") or {}).get("cudnn_version") \
        or next((v for n, v in (sw.get("numeric_libs") or {}).items() if n.startswith("nvidia-cudnn")), None)
    tags: dict[str, object] = {
        "repro.fp.hw": h["hw"], "repro.fp.sw": h["sw"], "repro.fp.env": h["env"],
        "repro.host": site.get("host"), "repro.site": site.get("site"),
        "repro.hw.cpu.arch": cpu.get("arch"), "repro.hw.cpu.vendor": cpu.get("vendor"),
        "repro.hw.cpu.model": cpu.get("model"), "repro.hw.cpu.flags": ",".join(cpu.get("flags") or []),
        "repro.hw.cpu.x86_64_level": cpu.get("x86_64_level"), "repro.hw.cpu.microcode": cpu.get("microcode"),
        "repro.hw.cpu.count": cpu.get("logical_cores"), "repro.hw.cpu.physical_cores": cpu.get("physical_cores"),
        "repro.hw.cpu.usable": cpu.get("usable_cores"),
        "repro.hw.gpu.count": gpu.get("count", 0),
        "repro.hw.gpu.name": ",".join(names), "repro.hw.gpu.cc": ",".join(ccs),
        "repro.hw.gpu.memory_mib": devices[0].get("memory_mib") if devices else None,
        "repro.hw.gpu.mig": ",".join(migs), "repro.hw.gpu.driver": gpu.get("driver"),
        "repro.hw.gpu.cuda_driver": gpu.get("cuda_driver"), "repro.hw.gpu.source": gpu.get("source"),
        "repro.hw.gpu.visible": gpu.get("cuda_visible_devices"),
        "repro.sw.os": sw.get("os"), "repro.sw.kernel": sw.get("kernel"), "repro.sw.libc": sw.get("libc"),
        "repro.sw.python": sw.get("python"), "repro.sw.cuda": sw.get("cuda"), "repro.sw.cudnn": cudnn,
        "repro.sw.packages": sw.get("packages_hash"),
        "repro.sw.container": container.get("image") or container.get("runtime"),
        "repro.sw.container.digest": container.get("digest"),
    }
    for name, fw in (sw.get("frameworks") or {}).items():
        tags[f"repro.sw.{name}"] = fw.get("version")
    for name, value in ((record.get("determinism") or {}).get("env") or {}).items():
        tags[f"repro.env.{name}"] = value
    slurm = site.get("slurm") or {}
    for var, key in SLURM_TAGS.items():
        tags[f"repro.slurm.{key}"] = slurm.get(var)
    condor = site.get("condor") or {}
    machine, job = condor.get("machine") or {}, condor.get("job") or {}
    for attr in CONDOR_TAGS:
        tags[f"repro.condor.{attr}"] = machine.get(attr)
    if "ClusterId" in job:
        tags["repro.condor.job_id"] = f"{job['ClusterId']}.{job.get('ProcId', 0)}"
    for key, value in (site.get("ec2") or {}).items():
        tags[f"repro.ec2.{key}"] = value
    return {k: short(v) for k, v in tags.items() if v not in (None, "")}
