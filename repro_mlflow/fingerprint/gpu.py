"""GPU probe: NVML (nvidia-ml-py) when importable and a driver is there, else `nvidia-smi`, else `rocm-smi`.

Parsers take the text a tool printed (`--query-gpu` CSV, `-q`, `-q -x` XML, `rocm-smi --json`), so
tests feed recorded captures. A GPU's UUID is never recorded, only a short hash of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Mapping

# The query run live; parsers read columns by name, so captures with more columns parse too.
SMI_FIELDS = ("index", "name", "uuid", "compute_cap", "memory.total", "driver_version", "mig.mode.current")
SMI_QUERY = ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv"]
SMI_TIMEOUT = 10.0

# Compute capability by model, for sources that do not report it (`-q`, `-q -x`, old drivers).
# Longest match first: "A100" before "A10".
_CC_TABLE = (
    ("GH200", "9.0"), ("H200", "9.0"), ("H100", "9.0"), ("H800", "9.0"), ("GB200", "10.0"), ("B200", "10.0"),
    ("A100", "8.0"), ("A800", "8.0"), ("A30", "8.0"), ("A10G", "8.6"), ("A10", "8.6"), ("A40", "8.6"),
    ("A16", "8.6"), ("A2", "8.6"), ("RTX A6000", "8.6"), ("RTX A5000", "8.6"), ("RTX A4000", "8.6"),
    ("L40S", "8.9"), ("L40", "8.9"), ("L4", "8.9"), ("Ada Generation", "8.9"), ("RTX 40", "8.9"),
    ("RTX 30", "8.6"), ("T4", "7.5"), ("Quadro RTX", "7.5"), ("TITAN RTX", "7.5"), ("RTX 20", "7.5"),
    ("V100", "7.0"), ("TITAN V", "7.0"), ("P100", "6.0"), ("P40", "6.1"), ("P4", "6.1"), ("K80", "3.7"),
)


def uuid_hash(uuid: str | None) -> str | None:
    """A short hash standing for a GPU UUID (the UUID itself is never recorded)."""
    return hashlib.sha256(uuid.strip().encode()).hexdigest()[:12] if uuid and uuid.strip() else None


def cc_from_name(name: str | None) -> str | None:
    """Compute capability of a known GPU model, from its name."""
    for key, cc in _CC_TABLE:
        if name and re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![0-9])", name):
            return cc
    return None


def _na(v: str | None) -> str | None:
    v = (v or "").strip()
    return None if not v or v.strip("[]") in ("N/A", "Not Supported", "Unknown Error") else v


def _mib(v: str | None) -> int | None:
    m = re.match(r"\s*(\d+)", v or "")
    return int(m.group(1)) if m else None


def _device(index, name, cc, mem, uuid, mig) -> dict:
    cc_src = "reported" if cc else None
    if not cc:
        cc = cc_from_name(name)
        cc_src = "table" if cc else None
    return {"index": index, "name": name, "compute_capability": cc, "compute_capability_source": cc_src,
            "memory_mib": mem, "uuid_hash": uuid_hash(uuid), "mig_mode": mig}


def parse_smi_csv(text: str) -> tuple[list[dict], str | None]:
    """Devices and driver version from `nvidia-smi --query-gpu=... --format=csv` (header required)."""
    import csv
    import io

    rows = [r for r in csv.reader(io.StringIO(text.strip()), skipinitialspace=True) if r]
    if not rows:
        return [], None
    header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in rows[0]]
    devices, driver = [], None
    for i, row in enumerate(rows[1:]):
        rec = dict(zip(header, (c.strip() for c in row)))
        if "name" not in rec:
            continue
        driver = driver or _na(rec.get("driver_version"))
        idx = _na(rec.get("index"))
        devices.append(_device(int(idx) if idx and idx.isdigit() else i, _na(rec.get("name")),
                               _na(rec.get("compute_cap")), _mib(_na(rec.get("memory.total"))),
                               _na(rec.get("uuid")), _na(rec.get("mig.mode.current"))))
    return devices, driver


def parse_smi_version(text: str) -> dict[str, str | None]:
    """Driver and CUDA driver versions from `nvidia-smi --version` or the banner of plain `nvidia-smi`."""
    drv = re.search(r"DRIVER version\s*:?\s*([\d.]+)", text, re.I)
    cuda = re.search(r"CUDA Version\s*:?\s*([\d.]+)", text, re.I)
    return {"driver": drv.group(1) if drv else None, "cuda_driver": cuda.group(1) if cuda else None}


def parse_smi_q(text: str) -> dict:
    """A GPU record from `nvidia-smi -q` text."""
    top = parse_smi_version(text)
    devices: list[dict] = []
    cur: dict | None = None
    section: list[tuple[int, str]] = []  # (indent, heading) of the nested sections we are in
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if re.match(r"^GPU [0-9A-Fa-f:.]+\s*$", line):
            cur = {"index": len(devices)}
            devices.append(cur)
            section = []
            continue
        if cur is None:
            continue
        while section and section[-1][0] >= indent:
            section.pop()
        key, sep, value = line.strip().partition(":")
        key = key.strip()
        if not sep or not value.strip():
            section.append((indent, key))
            continue
        path = "/".join([s for _, s in section] + [key])
        cur.setdefault(path, value.strip())
    out = [_device(d["index"], _na(d.get("Product Name")), None, _mib(d.get("FB Memory Usage/Total")),
                   _na(d.get("GPU UUID")), _na(d.get("MIG Mode/Current"))) for d in devices]
    return {"source": "nvidia-smi -q", **top, "devices": out}


def parse_smi_xml(text: str) -> dict:
    """A GPU record from `nvidia-smi -q -x` XML."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    out = []
    for i, g in enumerate(root.findall("gpu")):
        out.append(_device(i, _na(g.findtext("product_name")), None, _mib(g.findtext("fb_memory_usage/total")),
                           _na(g.findtext("uuid")), _na(g.findtext("mig_mode/current_mig"))))
    return {"source": "nvidia-smi -q -x", "driver": _na(root.findtext("driver_version")),
            "cuda_driver": _na(root.findtext("cuda_version")), "devices": out}


def parse_rocm_smi_json(text: str) -> dict:
    """A GPU record from `rocm-smi --showproductname --showdriverversion --showmeminfo vram --json`
    (keys as rocm-smi prints them; no recorded output was at hand to test against)."""
    import json

    data = json.loads(text or "{}")
    driver = (data.get("system") or {}).get("Driver version")
    out = []
    for key in sorted((k for k in data if k.startswith("card")), key=lambda k: int(re.sub(r"\D", "", k) or 0)):
        card = data[key]
        name = card.get("Card Series") or card.get("Card series") or card.get("Card model")
        gfx = card.get("GFX Version")
        vram = card.get("VRAM Total Memory (B)")
        out.append({"index": int(re.sub(r"\D", "", key) or 0), "name": name, "compute_capability": gfx,
                    "compute_capability_source": "reported" if gfx else None,
                    "memory_mib": int(vram) // (1024 * 1024) if vram and vram.isdigit() else None,
                    "uuid_hash": uuid_hash(card.get("Unique ID")), "mig_mode": None})
    return {"source": "rocm-smi", "driver": driver, "cuda_driver": None, "devices": out}


def probe_nvml() -> dict | None:
    """A GPU record through NVML, or None when pynvml or the driver is missing."""
    try:
        import pynvml  # nvidia-ml-py; optional
    except Exception:  # noqa: BLE001
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver
        return None

    def s(v):
        return v.decode() if isinstance(v, bytes) else v

    try:
        cuda = None
        try:
            v = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            cuda = f"{v // 1000}.{(v % 1000) // 10}"
        except Exception:  # noqa: BLE001
            pass
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            try:
                cc = "{}.{}".format(*pynvml.nvmlDeviceGetCudaComputeCapability(h))
            except Exception:  # noqa: BLE001
                cc = None
            try:
                mig = "Enabled" if pynvml.nvmlDeviceGetMigMode(h)[0] else "Disabled"
            except Exception:  # noqa: BLE001 - not MIG capable
                mig = None
            devices.append(_device(i, s(pynvml.nvmlDeviceGetName(h)), cc,
                                   pynvml.nvmlDeviceGetMemoryInfo(h).total // (1024 * 1024),
                                   s(pynvml.nvmlDeviceGetUUID(h)), mig))
        return {"source": "nvml", "driver": s(pynvml.nvmlSystemGetDriverVersion()), "cuda_driver": cuda,
                "devices": devices}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _run(cmd: list[str]) -> str | None:
    import subprocess

    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=SMI_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


def probe_smi(run: Callable[[list[str]], str | None] = _run) -> dict | None:
    """A GPU record from `nvidia-smi` (CSV query, then `--version` for the CUDA driver version)."""
    text = run(SMI_QUERY)
    if text is None:  # drivers before compute_cap was a field
        text = run(["nvidia-smi", f"--query-gpu={','.join(f for f in SMI_FIELDS if f != 'compute_cap')}",
                    "--format=csv"])
    if text is None:
        return None
    devices, driver = parse_smi_csv(text)
    versions = parse_smi_version(run(["nvidia-smi", "--version"]) or run(["nvidia-smi"]) or "")
    return {"source": "nvidia-smi", "driver": driver or versions["driver"], "cuda_driver": versions["cuda_driver"],
            "devices": devices}


def _nvidia_driver_present() -> bool:
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0"))


def probe_gpu(environ: Mapping[str, str] | None = None) -> dict:
    """Describe this machine's GPUs; costs nothing where there is no GPU driver or tool."""
    environ = os.environ if environ is None else environ
    rec = None
    if _nvidia_driver_present():
        rec = probe_nvml()
    if rec is None and shutil.which("nvidia-smi"):
        rec = probe_smi()
    if rec is None and shutil.which("rocm-smi"):
        text = _run(["rocm-smi", "--showproductname", "--showdriverversion", "--showmeminfo", "vram", "--json"])
        if text:
            try:
                rec = parse_rocm_smi_json(text)
            except ValueError:
                rec = None
    return finish(rec, environ)


def finish(rec: dict | None, environ: Mapping[str, str] | None = None) -> dict:
    """Complete a parsed record: count, distinct models, CUDA_VISIBLE_DEVICES."""
    environ = os.environ if environ is None else environ
    rec = dict(rec or {"source": None, "driver": None, "cuda_driver": None, "devices": []})
    devices = rec["devices"]
    rec["count"] = len(devices)
    rec["models"] = [list(m) for m in sorted({(d.get("name") or "?", d.get("compute_capability") or "?")
                                              for d in devices})]
    rec["cuda_visible_devices"] = environ.get("CUDA_VISIBLE_DEVICES")
    return rec
