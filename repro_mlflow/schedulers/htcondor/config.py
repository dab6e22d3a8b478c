"""Settings of `--backend repro-htcondor`, checked when they are parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

JOB_DURATIONS = ("Medium", "Long")  # OSPool +JobDurationCategory: Medium (default) up to 20 h, Long up to 40 h


@dataclass
class HTCondorConfig:
    """Settings of `--backend repro-htcondor` (all optional); a hardware target's `backend_config`."""

    schedd: str | None = None  # schedd name; default: this access point's own schedd
    collector: str | None = None  # pool (collector host) to find `schedd` in; default: this machine's
    container: str | None = None  # container_image: docker://..., /cvmfs/... (unpacked image), osdf://... or a .sif
    request_cpus: int = 1
    request_memory: str = "4GB"
    request_disk: str = "8GB"
    request_gpus: int = 0
    gpus_minimum_capability: float | None = None  # CUDA compute capability, e.g. 8.0
    gpus_minimum_memory: int | None = None  # MB of GPU memory
    require_gpus: str | None = None  # expression over the GPU's properties, e.g. 'Capability < 9.0'
    gpu_name_regex: str | None = None  # requirements: regexp(..., GPUs_DeviceName)
    microarch: list[str] | None = None  # requirements: Microarch is one of these (x86_64-v3, x86_64-v4, ...)
    cpu_model_regex: str | None = None  # requirements: regexp(..., OSGVO_CPU_MODEL)
    requirements: str | None = None  # any further requirements (ANDed)
    project_name: str | None = None  # +ProjectName (OSPool projects)
    job_duration: str | None = None  # +JobDurationCategory: Medium | Long
    desired_sites: list[str] | None = None  # +DESIRED_Sites
    max_retries: int = 2  # HTCondor reruns a proc that exits non-zero up to this many times
    max_releases: int = 0  # repro releases a held proc up to this many times (never a condor_hold), then fails it
    offline: bool | None = None  # log to the offline store on the worker; default: when the tracking URI is a local file
    pip: list[str] | None = None  # extra packages the job installs into its sandbox (e.g. mlxtend)
    mlflow_pip: str = "mlflow-skinny"  # what the job installs when the container has no mlflow
    python: str | None = None  # absolute path of the Python that runs the job on the execute point; default: python3 on its PATH
    env: dict | None = None  # extra environment variables for the runs
    submit_extra: dict | None = None  # more submit commands, verbatim (key = value)
    dry_run: bool = False  # write job.sub and items.txt and stop; submit them by hand with condor_submit

    def __post_init__(self) -> None:
        check_config(self)


def check_config(cfg: HTCondorConfig) -> None:
    """One-line errors for values the submit language would take but OSPool would not."""
    if cfg.job_duration is not None and cfg.job_duration not in JOB_DURATIONS:
        raise ValueError(f"job_duration must be one of {', '.join(JOB_DURATIONS)}, got {cfg.job_duration!r}")
    for key in ("request_memory", "request_disk"):
        if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B?)?", str(getattr(cfg, key)), re.I):
            raise ValueError(f"{key} must be a size like 4GB or 2048MB, got {getattr(cfg, key)!r}")
    if cfg.container and not (cfg.container.startswith(("docker://", "/cvmfs/", "osdf://")) or cfg.container.endswith(".sif")):
        raise ValueError(f"container must be docker://..., a /cvmfs path, an osdf:// URL or a .sif file, got {cfg.container!r}")
    if cfg.python is not None and not cfg.python.startswith("/"):
        raise ValueError(f"python must be an absolute path on the execute point, got {cfg.python!r}")
    if cfg.request_cpus < 1 or cfg.request_gpus < 0 or cfg.max_retries < 0 or cfg.max_releases < 0:
        raise ValueError("request_cpus must be >= 1; request_gpus, max_retries and max_releases >= 0")
    if not cfg.request_gpus and (cfg.gpus_minimum_capability or cfg.gpus_minimum_memory or cfg.require_gpus or cfg.gpu_name_regex):
        raise ValueError("GPU constraints need request_gpus >= 1")
