"""CPU probe: /proc/cpuinfo and sysfs, for x86-64 and aarch64."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# Instruction sets that change floating-point results (vector width, FMA contraction, bf16/int8 paths).
NUMERIC_FLAGS_X86 = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    "avx512cd", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",
    "amx_int8", "amx_fp16",
)
NUMERIC_FLAGS_ARM = ("fp", "asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2", "bf16", "i8mm", "svebf16", "svei8mm")


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo into one dict per processor block (tab or space layouts)."""
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        cur[key.strip().lower()] = value.strip()
    if cur:
        blocks.append(cur)
    return blocks


def x86_level(flags: set[str]) -> str:
    """The x86-64 micro-architecture level (v1..v4) implied by the flags."""
    v2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
    v3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    v4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    level = "v1"
    for name, need in (("v2", v2), ("v3", v3), ("v4", v4)):
        # abm is reported as 'abm' on Intel and AMD; lzcnt is its user-visible part.
        if need - flags - ({"abm"} if "lzcnt" in flags else set()):
            break
        level = name
    return level


def probe_cpu(cpuinfo_text: str | None = None, machine: str | None = None) -> dict:
    """Describe the CPU from a /proc/cpuinfo text (read live when None)."""
    machine = machine or platform.machine()
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo_text = ""
    blocks = [b for b in parse_cpuinfo(cpuinfo_text) if "processor" in b or "flags" in b or "features" in b]
    first = blocks[0] if blocks else {}
    flags = set((first.get("flags") or first.get("features") or "").split())
    is_arm = "features" in first or machine in ("aarch64", "arm64")
    numeric = NUMERIC_FLAGS_ARM if is_arm else NUMERIC_FLAGS_X86
    out: dict = {
        "arch": "aarch64" if is_arm else (machine or "x86_64"),
        "vendor": first.get("vendor_id") or _arm_vendor(first.get("cpu implementer")),
        "model": first.get("model name") or _arm_model(first),
        "family": first.get("cpu family") or first.get("cpu architecture"),
        "model_id": first.get("model") or first.get("cpu part"),
        "stepping": first.get("stepping") or first.get("cpu variant"),
        "microcode": first.get("microcode"),
        "logical_cores": len(blocks) or os.cpu_count(),
        "flags": sorted(f for f in numeric if f in flags),
    }
    if not is_arm:
        out["x86_64_level"] = x86_level(flags)
    physical = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
    out["physical_cores"] = len(physical) if physical else out["logical_cores"]
    return out


_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x61": "Apple", "0xc0": "Ampere", "0x4e": "NVIDIA", "0x51": "Qualcomm"}
_ARM_PARTS = {"0xd0c": "Neoverse-N1", "0xd40": "Neoverse-V1", "0xd4f": "Neoverse-V2", "0xd49": "Neoverse-N2"}


def _arm_vendor(implementer: str | None) -> str | None:
    return _ARM_IMPLEMENTERS.get((implementer or "").lower(), implementer)


def _arm_model(block: dict[str, str]) -> str | None:
    part = (block.get("cpu part") or "").lower()
    return _ARM_PARTS.get(part, part or None)
