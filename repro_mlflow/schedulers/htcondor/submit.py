"""The submit description of a batch (one cluster), per OSPool conventions, built with `htcondor2.Submit`.

One cluster per batch; one proc per run, its item data `run_id,run_index` (proc N is run N). Every
proc has its own `initialdir` (`<batch>/runs/<i>`), where its output files come back; the cluster
shares one event log (`<batch>/cluster.log`). The commands and environment of the runs travel in
`batch.json` (the batch record), an input file, so no command is ever quoted into the submit language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ReproError
from .events import import_htcondor

from .config import HTCondorConfig

QUEUE_VARS = "run_id,run_index"
LOG_NAME = "cluster.log"
OUT_DIR = "repro_out"  # in the sandbox: output.log and offline/ (the offline MLflow store); transferred back


def _string(value: str) -> str:
    """A ClassAd string literal."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def requirements(cfg: HTCondorConfig) -> str | None:
    """The requirements expression: GPU model, microarchitecture, CPU model, plus the user's own."""
    parts: list[str] = []
    if cfg.gpu_name_regex:
        parts.append(f"regexp({_string(cfg.gpu_name_regex)}, GPUs_DeviceName)")
    if cfg.microarch:
        parts.append("(" + " || ".join(f"Microarch == {_string(m)}" for m in cfg.microarch) + ")")
    if cfg.cpu_model_regex:
        parts.append(f"regexp({_string(cfg.cpu_model_regex)}, OSGVO_CPU_MODEL)")
    if cfg.requirements:
        parts.append(f"({cfg.requirements})")
    return " && ".join(parts) or None


def description(cfg: HTCondorConfig, workdir: Path, inputs: list[Path], executable: Path) -> Any:
    """The `htcondor2.Submit` of a batch staged in `workdir` (paths absolute; nothing needs to exist)."""
    htcondor2 = import_htcondor()
    workdir = Path(workdir)
    d: dict[str, str] = {}
    if cfg.container:
        d["universe"] = "container"
        d["container_image"] = cfg.container
    else:
        d["universe"] = "vanilla"
    if cfg.python:  # the execute point's own Python runs the wrapper, which travels as an input file
        d["executable"] = cfg.python
        d["transfer_executable"] = "false"
        d["arguments"] = f"{Path(executable).name} $(run_id) $(run_index)"
        inputs = [*inputs, Path(executable)]
    else:
        d["executable"] = str(executable)
        d["arguments"] = "$(run_id) $(run_index)"
    d["initialdir"] = str(workdir / "runs" / "$(run_index)")
    d["log"] = str(workdir / LOG_NAME)
    d["output"] = "job.out"
    d["error"] = "job.err"
    d["should_transfer_files"] = "YES"
    d["transfer_input_files"] = ", ".join(str(p) for p in inputs)
    d["transfer_output_files"] = OUT_DIR
    d["when_to_transfer_output"] = "ON_EXIT_OR_EVICT"
    d["request_cpus"] = str(cfg.request_cpus)
    d["request_memory"] = cfg.request_memory
    d["request_disk"] = cfg.request_disk
    if cfg.request_gpus:
        d["request_gpus"] = str(cfg.request_gpus)
        if cfg.gpus_minimum_capability is not None:
            d["gpus_minimum_capability"] = str(cfg.gpus_minimum_capability)
        if cfg.gpus_minimum_memory is not None:
            d["gpus_minimum_memory"] = str(cfg.gpus_minimum_memory)
        if cfg.require_gpus:
            d["require_gpus"] = cfg.require_gpus
    req = requirements(cfg)
    if req:
        d["requirements"] = req
    d["max_retries"] = str(cfg.max_retries)
    if cfg.project_name:
        d["+ProjectName"] = _string(cfg.project_name)
    if cfg.job_duration:
        d["+JobDurationCategory"] = _string(cfg.job_duration)
    if cfg.desired_sites:
        d["+DESIRED_Sites"] = _string(",".join(cfg.desired_sites))
    d["+ReproBatch"] = _string(workdir.name)
    for key, value in (cfg.submit_extra or {}).items():
        d[str(key)] = str(value)
    try:
        sub = htcondor2.Submit(d)
    except Exception as e:  # noqa: BLE001 - the bindings raise several kinds
        raise ReproError(f"htcondor: the submit description is invalid: {e}") from None
    sub.setQArgs(f"{QUEUE_VARS} from items.txt")
    return sub


def item_data(run_ids: list[str]) -> list[dict[str, str]]:
    """One item per run, in order: proc N gets `run_id` and `run_index` N."""
    return [{"run_id": rid, "run_index": str(i)} for i, rid in enumerate(run_ids)]


def write_submit_files(sub: Any, items: list[dict[str, str]], workdir: Path) -> tuple[Path, Path]:
    """Write `job.sub` and `items.txt` into `workdir`, for reading or for `condor_submit job.sub` by hand."""
    sub_path, items_path = Path(workdir) / "job.sub", Path(workdir) / "items.txt"
    body = "\n".join(f"{k} = {v}" for k, v in sub.items())
    sub_path.write_text(
        "# repro-mlflow batch: one proc per run; submit by hand with  condor_submit job.sub\n"
        f"{body}\n\nqueue {QUEUE_VARS} from {items_path}\n"
    )
    items_path.write_text("".join(f"{it['run_id']},{it['run_index']}\n" for it in items))
    return sub_path, items_path
