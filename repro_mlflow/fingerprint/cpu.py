"""CPU probe: /proc/cpuinfo and sysfs, for x86-64 and aarch64 (ppc64le read as far as it goes).

Every reader takes its source as an argument (the text of /proc/cpuinfo, a root directory for
sysfs and cgroup files) so tests feed recorded machine output; `None` reads this machine.
"""

from __future__ import annotations

import math
import os
import platform
import re
from pathlib import Path

# Instruction sets that change floating-point results (vector width, FMA contraction, bf16/fp16/int8 paths).
NUMERIC_FLAGS_X86 = (
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "fma4", "f16c", "avx512f", "avx512dq", "avx512cd", "avx512bw",
    "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
    "avx_vnni_int8", "avx_ne_convert", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "amx_complex",
)
NUMERIC_FLAGS_ARM = (
    "fp", "asimd", "fphp", "asimdhp", "asimddp", "asimdfhm", "asimdrdm", "fcma", "frint", "bf16", "i8mm",
    "sve", "sve2", "svebf16", "svei8mm", "svef32mm", "svef64mm", "sme", "sme2",
)
_X86_LEVELS = (
    ("v2", {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}),
    ("v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
)

_ARM_IMPLEMENTERS = {
    "0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "Fujitsu", "0x48": "HiSilicon",
    "0x4e": "NVIDIA", "0x50": "APM", "0x51": "Qualcomm", "0x61": "Apple", "0x6d": "Microsoft", "0xc0": "Ampere",
}
_ARM_PARTS = {  # (implementer, part) -> core name, as lscpu names them
    ("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd05"): "Cortex-A55", ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72", ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd0d"): "Cortex-A77", ("0x41", "0xd40"): "Neoverse-V1", ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd44"): "Cortex-X1", ("0x41", "0xd46"): "Cortex-A510", ("0x41", "0xd47"): "Cortex-A710",
    ("0x41", "0xd48"): "Cortex-X2", ("0x41", "0xd49"): "Neoverse-N2", ("0x41", "0xd4d"): "Cortex-A715",
    ("0x41", "0xd4e"): "Cortex-X3", ("0x41", "0xd4f"): "Neoverse-V2", ("0x41", "0xd80"): "Cortex-A520",
    ("0x41", "0xd81"): "Cortex-A720", ("0x41", "0xd82"): "Cortex-X4", ("0x41", "0xd84"): "Neoverse-V3",
    ("0x41", "0xd8e"): "Neoverse-N3", ("0x46", "0x001"): "A64FX", ("0x48", "0xd01"): "TaiShan-v110",
    ("0x61", "0x022"): "Icestorm-M1", ("0x61", "0x023"): "Firestorm-M1", ("0xc0", "0xac3"): "AmpereOne",
    ("0xc0", "0xac4"): "AmpereOne-AC04", ("0x4e", "0x004"): "Carmel",
}


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo into one dict per processor (tab or space layouts; a new block starts at
    a blank line or at a repeated `processor` line, so files without blank lines parse too)."""
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "processor" and "processor" in cur:
            blocks.append(cur)
            cur = {}
        cur[key] = value.strip()
    if cur:
        blocks.append(cur)
    return blocks


def x86_level(flags: set[str]) -> str:
    """The x86-64 micro-architecture level (v1..v4) the flags allow (psABI definitions)."""
    have = flags | ({"abm"} if "lzcnt" in flags else set())
    level = "v1"
    for name, need in _X86_LEVELS:
        if need - have:
            break
        level = name
    return level


def arm_core_name(implementer: str | None, part: str | None) -> str | None:
    """Core name for an aarch64 (implementer, part) pair, or the raw ids when unknown."""
    imp, prt = (implementer or "").lower(), (part or "").lower()
    if not prt:
        return None
    return _ARM_PARTS.get((imp, prt)) or f"{_ARM_IMPLEMENTERS.get(imp, imp or '?')} part {prt}"


def _block_model(b: dict[str, str]) -> str | None:
    if "model name" in b:
        return " ".join(b["model name"].split())
    if "cpu part" in b:
        return arm_core_name(b.get("cpu implementer"), b.get("cpu part"))
    if "cpu" in b:  # ppc64le: "POWER9, altivec supported"
        return b["cpu"].split(",")[0].strip()
    return None


def _vendor(block: dict[str, str], is_arm: bool) -> str | None:
    if "vendor_id" in block:
        return block["vendor_id"]
    if is_arm:
        imp = block.get("cpu implementer")
        return _ARM_IMPLEMENTERS.get((imp or "").lower(), imp)
    return "IBM" if "power" in block.get("cpu", "").lower() else None


def _cgroup_quota(root: Path) -> float | None:
    """CPU quota of this process's cgroup in cores (v2 `cpu.max` or v1 `cfs_quota_us`), None if unlimited."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    paths_v2, paths_v1 = [], []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            paths_v2.append(path)
        elif "cpu" in controllers.split(","):
            paths_v1.append(path)
    limits: list[float] = []
    for path in paths_v2 + ["/"]:
        cur = Path(path.strip() or "/")
        for d in [cur, *cur.parents]:  # the tightest limit on the way up counts
            try:
                quota, period = (root / "sys/fs/cgroup" / str(d).lstrip("/") / "cpu.max").read_text().split()[:2]
            except (OSError, ValueError):
                continue
            if quota != "max":
                limits.append(int(quota) / int(period))
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for path in paths_v1 + ["/"]:
            base = root / "sys/fs/cgroup" / mount / path.strip().lstrip("/")
            try:
                quota = int((base / "cpu.cfs_quota_us").read_text())
                period = int((base / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            if quota > 0 and period > 0:
                limits.append(quota / period)
    return min(limits) if limits else None


def _sysfs_topology(root: Path) -> tuple[int | None, int | None]:
    """(physical cores, sockets) from /sys/devices/system/cpu/cpu*/topology."""
    base = root / "sys/devices/system/cpu"
    cores, sockets = set(), set()
    try:
        entries = [e for e in os.scandir(base) if re.fullmatch(r"cpu\d+", e.name)]
    except OSError:
        return None, None
    for e in entries:
        try:
            pkg = (Path(e.path) / "topology/physical_package_id").read_text().strip()
            core = (Path(e.path) / "topology/core_id").read_text().strip()
        except OSError:
            continue
        cores.add((pkg, core))
        sockets.add(pkg)
    return (len(cores) or None), (len(sockets) or None)


def probe_cpu(cpuinfo_text: str | None = None, machine: str | None = None, root: str | Path | None = None,
              affinity: int | None = None) -> dict:
    """Describe the CPU. `cpuinfo_text` None reads /proc/cpuinfo; `root` None reads this machine's
    sysfs and cgroup files (pass a directory to read a recorded tree; "" skips them)."""
    live = cpuinfo_text is None
    machine = machine or platform.machine()
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo_text = ""
    blocks = [b for b in parse_cpuinfo(cpuinfo_text) if "processor" in b]
    first = blocks[0] if blocks else {}
    flag_sets = [set((b.get("flags") or b.get("features") or "").split()) for b in blocks] or [set()]
    flags = set.intersection(*flag_sets)  # what every processor offers
    is_arm = "features" in first or "cpu implementer" in first or machine in ("aarch64", "arm64")
    is_x86 = "vendor_id" in first or (not is_arm and machine in ("x86_64", "amd64", "i686"))
    models = list(dict.fromkeys(m for m in (_block_model(b) for b in blocks) if m))
    out: dict = {
        "arch": "aarch64" if is_arm else ("x86_64" if is_x86 else machine or None),
        "vendor": _vendor(first, is_arm),
        "model": " + ".join(models) if models else None,
        "family": first.get("cpu family") or first.get("cpu architecture"),
        "model_id": first.get("model") if is_x86 else first.get("cpu part"),
        "stepping": first.get("stepping") if is_x86 else first.get("cpu variant"),
        "microcode": first.get("microcode"),
        "revision": first.get("cpu revision"),
        "logical_cores": len(blocks) or (os.cpu_count() if live else None),
        "flags": sorted(f for f in (NUMERIC_FLAGS_ARM if is_arm else NUMERIC_FLAGS_X86) if f in flags),
        "hypervisor": "hypervisor" in flags,
    }
    if len(models) > 1:
        out["models"] = models
    if is_x86:
        out["x86_64_level"] = x86_level(flags)
    physical = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
    sockets = {b.get("physical id") for b in blocks if "physical id" in b}
    root_path = Path("/") if (root is None and live) else (Path(root) if root else None)
    sys_cores = sys_sockets = None
    if root_path is not None and not physical:
        sys_cores, sys_sockets = _sysfs_topology(root_path)
    out["physical_cores"] = len(physical) if physical else (sys_cores or out["logical_cores"])
    out["sockets"] = len(sockets) if sockets else sys_sockets
    if affinity is None and live and hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(root_path) if root_path is not None else None
    out["affinity_cores"] = affinity
    out["cgroup_cpu_quota"] = round(quota, 3) if quota is not None else None
    usable = [x for x in (affinity, math.ceil(quota) if quota else None) if x]
    out["usable_cores"] = min(usable) if usable else out["logical_cores"]
    return out
