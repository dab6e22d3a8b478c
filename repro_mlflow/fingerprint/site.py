"""Site probe: HTCondor machine and job ads, Slurm, EC2 (IMDSv2), host name; and the best site name.

Only allow-listed ClassAd attributes and Slurm variables are kept. The EC2 probe runs only where
there is a sign of EC2 (DMI vendor, Xen UUID) or an explicit endpoint, with a 0.2 s connect
timeout, so it costs nothing elsewhere; its session token is never recorded.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path

from .safety import looks_like_credential

MACHINE_AD_ATTRS = (
    "GLIDEIN_Site", "GLIDEIN_ResourceName", "GLIDEIN_CMSSite", "GLIDEIN_SiteWMS", "GLIDEIN_Factory",
    "GLIDEIN_Name", "OSG_SITE_NAME", "OSGVO_CPU_MODEL", "OSGVO_OS_STRING", "Microarch", "CpuFamily",
    "CpuModelNumber", "CPUModel", "has_sse4_2", "has_avx", "has_avx2", "has_avx512f", "has_avx512dq",
    "has_avx512bw", "has_avx512vl", "Arch", "UtsnameMachine", "OpSysAndVer", "OpSysLongName", "CondorVersion",
    "Machine", "Name", "SlotType", "TotalCpus", "Cpus", "Memory", "GPUs", "GPUs_DeviceName", "GPUs_Capability",
    "GPUs_DriverVersion", "GPUs_GlobalMemoryMb", "CUDADeviceName", "CUDACapability", "CUDADriverVersion",
    "HAS_SINGULARITY", "SINGULARITY_VERSION",
)
JOB_AD_ATTRS = (
    "ClusterId", "ProcId", "GlobalJobId", "RequestCpus", "RequestGpus", "RequestMemory", "JobUniverse",
    "ContainerImage", "SingularityImage", "DockerImage", "MATCH_EXP_JOB_GLIDEIN_Site",
    "MATCH_EXP_JOB_GLIDEIN_ResourceName",
)
SLURM_ENV = (
    "SLURM_CLUSTER_NAME", "SLURM_JOB_PARTITION", "SLURMD_NODENAME", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK", "SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE",
)
IMDS_DEFAULT = "http://169.254.169.254"
IMDS_ENDPOINT_VARS = ("REPRO_IMDS_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT")
CONNECT_TIMEOUT = 0.2
READ_TIMEOUT = 1.0
IMDS_PATHS = {"instance_type": "instance-type", "availability_zone": "placement/availability-zone",
              "region": "placement/region", "ami_id": "ami-id"}


def _value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r'\\(.)', r'\1', raw[1:-1])
    return raw


def parse_classads(text: str) -> list[dict[str, str]]:
    """ClassAds from long form (`Name = value` lines, blank line between ads) or `condor_status -xml`."""
    if text.lstrip().startswith("<"):
        return _parse_classads_xml(text)
    ads, cur = [], {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                ads.append(cur)
                cur = {}
            continue
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s?(.*)$", line)
        if m:
            cur[m.group(1)] = _value(m.group(2))
    if cur:
        ads.append(cur)
    return ads


def _parse_classads_xml(text: str) -> list[dict[str, str]]:
    import xml.etree.ElementTree as ET

    text = re.sub(r"<!DOCTYPE[^>]*>", "", text)
    out = []
    for c in ET.fromstring(text).iter("c"):
        ad = {}
        for a in c.findall("a"):
            child = next(iter(a), None)
            if child is None:
                continue
            ad[a.get("n")] = child.get("v") if child.tag == "b" else (child.text or "")
            if child.tag == "b":
                ad[a.get("n")] = "true" if child.get("v") == "t" else "false"
        out.append(ad)
    return out


def _keep(ad: Mapping[str, str], attrs: tuple[str, ...]) -> dict[str, str]:
    lower = {k.lower(): v for k, v in ad.items()}  # ClassAd names are case-insensitive
    return {a: lower[a.lower()] for a in attrs if a.lower() in lower and not looks_like_credential(a)}


def probe_condor(machine_ad: str | None = None, job_ad: str | None = None,
                 environ: Mapping[str, str] | None = None) -> dict | None:
    """Allow-listed attributes of the slot's machine ad and the job ad (texts, or the files that
    `$_CONDOR_MACHINE_AD` / `$_CONDOR_JOB_AD` name)."""
    environ = os.environ if environ is None else environ

    def read(text, var):
        if text is not None:
            return text
        path = environ.get(var)
        if not path:
            return None
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    m_text, j_text = read(machine_ad, "_CONDOR_MACHINE_AD"), read(job_ad, "_CONDOR_JOB_AD")
    if m_text is None and j_text is None:
        return None
    m_ads = parse_classads(m_text) if m_text else []
    j_ads = parse_classads(j_text) if j_text else []
    return {"machine": _keep(m_ads[0], MACHINE_AD_ATTRS) if m_ads else {},
            "job": _keep(j_ads[0], JOB_AD_ATTRS) if j_ads else {}}


def probe_slurm(environ: Mapping[str, str] | None = None) -> dict | None:
    """Slurm's job variables (cluster, partition, node, job id), when in a Slurm job."""
    environ = os.environ if environ is None else environ
    out = {n: environ[n] for n in SLURM_ENV if n in environ}
    return out or None


def _on_ec2(root: Path) -> bool:
    for f in ("sys/devices/virtual/dmi/id/sys_vendor", "sys/devices/virtual/dmi/id/board_vendor",
              "sys/devices/virtual/dmi/id/bios_vendor"):
        try:
            if "amazon" in (root / f).read_text().lower():
                return True
        except OSError:
            pass
    try:
        return (root / "sys/hypervisor/uuid").read_text().lower().startswith("ec2")
    except OSError:
        return False


def imds_endpoint(environ: Mapping[str, str] | None = None, root: str | Path = "/") -> str | None:
    """The IMDS base URL to ask, or None when this is clearly not EC2 (or IMDS is disabled)."""
    environ = os.environ if environ is None else environ
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true" or environ.get("REPRO_IMDS") == "0":
        return None
    for var in IMDS_ENDPOINT_VARS:
        if environ.get(var):
            return environ[var]
    if environ.get("REPRO_IMDS") == "1" or _on_ec2(Path(root)):
        return IMDS_DEFAULT
    return None


def _request(endpoint: str, method: str, path: str, headers: dict[str, str]) -> str | None:
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(endpoint)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname, u.port, timeout=CONNECT_TIMEOUT)
    try:
        conn.connect()
        conn.sock.settimeout(READ_TIMEOUT)
        conn.request(method, u.path.rstrip("/") + path, headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return body if resp.status == 200 else None
    finally:
        conn.close()


def probe_ec2(endpoint: str | None) -> dict | None:
    """Instance type, availability zone, region and AMI through IMDSv2 (PUT a token, then GET)."""
    if not endpoint:
        return None
    import http.client

    try:
        token = _request(endpoint, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        if not token:
            return None
        out = {}
        for key, path in IMDS_PATHS.items():
            v = _request(endpoint, "GET", f"/latest/meta-data/{path}", {"X-aws-ec2-metadata-token": token})
            if v:
                out[key] = v.strip()
    except (OSError, http.client.HTTPException):
        return None
    if "availability_zone" in out and "region" not in out:
        out["region"] = re.sub(r"[a-z]$", "", out["availability_zone"])
    return out or None


def best_site(site: Mapping) -> str | None:
    """The best site name: GLIDEIN_Site, then the Slurm cluster, then the EC2 availability zone, then the host."""
    condor = (site.get("condor") or {}).get("machine") or {}
    job = (site.get("condor") or {}).get("job") or {}
    for v in (condor.get("GLIDEIN_Site"), job.get("MATCH_EXP_JOB_GLIDEIN_Site"),
              (site.get("slurm") or {}).get("SLURM_CLUSTER_NAME"),
              (site.get("ec2") or {}).get("availability_zone"), site.get("host")):
        if v:
            return v
    return None


def probe_site(environ: Mapping[str, str] | None = None, root: str | Path = "/") -> dict:
    """Host, HTCondor, Slurm and EC2 facts, and the best site name."""
    environ = os.environ if environ is None else environ
    out = {"host": socket.gethostname(), "condor": probe_condor(environ=environ),
           "slurm": probe_slurm(environ), "ec2": probe_ec2(imds_endpoint(environ, root))}
    out["site"] = best_site(out)
    return out
