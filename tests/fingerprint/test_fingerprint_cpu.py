"""CPU probe against recorded /proc/cpuinfo of real machines, sysfs/cgroup trees, and this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repro_mlflow.fingerprint.cpu import parse_cpuinfo, probe_cpu, x86_level

from .helpers import fixture_text

# file -> (vendor, model, x86-64 level or None, flags that must be there, flags that must not, logical, physical)
CASES = {
    "archspec_intel_xeon_platinum_8480plus_sapphirerapids_1cpu.txt":
        ("GenuineIntel", "Intel(R) Xeon(R) Platinum 8480+", "v4",
         {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"},
         set(), 1, 1),
    "eessi_intel_xeon_platinum_8488C_aws_sapphirerapids_1cpu.txt":
        ("GenuineIntel", "Intel(R) Xeon(R) Platinum 8488C", "v4", {"amx_tile", "avx512_fp16", "avx_vnni"}, set(), 1, 1),
    "archspec_intel_xeon_gold_6132_skylake_avx512_1cpu.txt":
        ("GenuineIntel", "Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz", "v4", {"avx512f", "avx512cd", "fma"},
         {"avx512_vnni", "amx_tile"}, 1, 1),
    "archspec_intel_xeon_platinum_8260M_cascadelake_1cpu.txt":
        ("GenuineIntel", "Intel(R) Xeon(R) Platinum 8260M CPU @ 2.40GHz", "v4", {"avx512_vnni"}, {"avx512_bf16"}, 1, 1),
    "cadvisor_intel_xeon_gold_5218R_avx512_32cpu_vm_full.txt":
        ("GenuineIntel", "Intel(R) Xeon(R) Gold 5218R CPU @ 2.10GHz", "v4", {"avx512f", "avx512_vnni"}, {"amx_tile"}, 32, 16),
    "util-linux_intel_xeon_X7550_64cpu_full.txt":
        ("GenuineIntel", "Intel(R) Xeon(R) CPU X7550 @ 2.00GHz", "v2", {"sse4_2"}, {"avx", "fma"}, 64, 32),
    "archspec_amd_epyc_9654_zen4_1cpu.txt":
        ("AuthenticAMD", "AMD EPYC 9654 96-Core Processor", "v4", {"avx512f", "avx512_bf16"}, {"amx_tile"}, 1, 1),
    "eessi_amd_epyc_9V33X_azure_zen4_1cpu.txt":
        ("AuthenticAMD", "AMD EPYC 9V33X 96-Core Processor", "v4", {"avx512f"}, set(), 1, 1),
    "archspec_amd_epyc_7301_zen_1cpu.txt":
        ("AuthenticAMD", "AMD EPYC 7301 16-Core Processor", "v3", {"avx2", "fma"}, {"avx512f"}, 1, 1),
    "util-linux_amd_epyc_7451_96cpu_full.txt":
        ("AuthenticAMD", "AMD EPYC 7451 24-Core Processor", "v3", {"avx2"}, {"avx512f"}, 96, 48),
    "archspec_aarch64_aws_graviton2_neoverse_n1_1cpu.txt":
        ("ARM", "Neoverse-N1", None, {"asimd", "asimddp", "fphp"}, {"sve", "bf16"}, 1, 1),
    "ohai_aarch64_aws_graviton2_2cpu_full.txt":
        ("ARM", "Neoverse-N1", None, {"asimd"}, {"sve"}, 2, 2),
    "archspec_aarch64_aws_graviton3_neoverse_v1_1cpu.txt":
        ("ARM", "Neoverse-V1", None, {"sve", "bf16", "i8mm", "svebf16"}, {"sve2"}, 1, 1),
    "archspec_aarch64_neoverse_v2_ubuntu22.04_1cpu.txt":
        ("ARM", "Neoverse-V2", None, {"sve", "sve2", "bf16"}, set(), 1, 1),
    "eessi_aarch64_nvidia_grace_neoverse_v2_1cpu.txt": ("ARM", "Neoverse-V2", None, {"sve2"}, set(), 1, 1),
    "eessi_aarch64_google_axion_neoverse_v2_1cpu.txt": ("ARM", "Neoverse-V2", None, {"sve2"}, set(), 1, 1),
    "archspec_aarch64_ampere1_1cpu.txt": ("Ampere", "AmpereOne", None, {"bf16", "i8mm"}, {"sve"}, 1, 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_cpuinfo(name):
    vendor, model, level, must, must_not, logical, physical = CASES[name]
    cpu = probe_cpu(fixture_text("cpuinfo", name), machine="unknown", root="")
    assert cpu["vendor"] == vendor
    assert cpu["model"] == model
    assert cpu.get("x86_64_level") == level
    assert cpu["arch"] == ("x86_64" if level else "aarch64")
    assert must <= set(cpu["flags"]), must - set(cpu["flags"])
    assert not (must_not & set(cpu["flags"]))
    assert cpu["logical_cores"] == logical
    assert cpu["physical_cores"] == physical
    # only numerics flags are kept: no security/virtualisation noise
    assert not {"vmx", "ht", "hypervisor", "evtstrm", "aes"} & set(cpu["flags"])


def test_microcode_family_stepping_and_sockets():
    cpu = probe_cpu(fixture_text("cpuinfo", "archspec_intel_xeon_platinum_8480plus_sapphirerapids_1cpu.txt"), root="")
    assert (cpu["family"], cpu["model_id"], cpu["stepping"], cpu["microcode"]) == ("6", "143", "6", "0x2b000181")
    epyc = probe_cpu(fixture_text("cpuinfo", "util-linux_amd_epyc_7451_96cpu_full.txt"), root="")
    assert epyc["sockets"] == 2 and epyc["microcode"] == "0x8001227"
    arm = probe_cpu(fixture_text("cpuinfo", "archspec_aarch64_aws_graviton3_neoverse_v1_1cpu.txt"), root="")
    assert (arm["model_id"], arm["stepping"], arm["revision"], arm["microcode"]) == ("0xd40", "0x1", "1", None)


def test_tab_and_space_layouts_read_alike():
    tab = fixture_text("cpuinfo", "archspec_intel_xeon_gold_6132_skylake_avx512_1cpu.txt")
    space = fixture_text("cpuinfo", "archspec_intel_xeon_platinum_8260M_cascadelake_1cpu.txt")
    assert "\t:" in tab and "\t:" not in space
    for text in (tab, space):
        (block,) = parse_cpuinfo(text)
        assert {"processor", "vendor_id", "model name", "flags", "microcode"} <= block.keys()
    # and converting one layout into the other gives the same record
    assert probe_cpu(tab.replace("\t", " "), root="") == probe_cpu(tab, root="")


def test_blocks_without_blank_lines_split_on_processor():
    blocks = parse_cpuinfo(fixture_text("cpuinfo", "ohai_aarch64_aws_graviton2_2cpu_full.txt"))
    assert [b["processor"] for b in blocks] == ["0", "1"]


def test_heterogeneous_cores_are_all_named():
    cpu = probe_cpu(fixture_text("cpuinfo", "util-linux_aarch64_A510-A710-A715-X3_8cpu_full.txt"), root="")
    assert set(cpu["models"]) == {"Cortex-A510", "Cortex-A710", "Cortex-A715", "Cortex-X3"}
    assert cpu["logical_cores"] == 8 and "i8mm" in cpu["flags"] and "sve" not in cpu["flags"]


def test_ppc64le_reads_what_is_there():
    cpu = probe_cpu(fixture_text("cpuinfo", "archspec_ppc64le_power9_1cpu.txt"), machine="ppc64le", root="")
    assert (cpu["arch"], cpu["vendor"], cpu["model"], cpu["flags"]) == ("ppc64le", "IBM", "POWER9", [])


def test_x86_level_definitions():
    v2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
    v3 = v2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    v4 = v3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    assert [x86_level(s) for s in (set(), v2, v3, v4)] == ["v1", "v2", "v3", "v4"]
    assert x86_level(v4 - {"avx512vl"}) == "v3" and x86_level(v3 - {"fma"}) == "v2"


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_cgroup_v2_quota_limits_usable_cores(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "0::/slurm/job_7\n")
    _write(tmp_path, "sys/fs/cgroup/slurm/job_7/cpu.max", "150000 100000\n")
    _write(tmp_path, "sys/fs/cgroup/slurm/cpu.max", "max 100000\n")
    text = fixture_text("cpuinfo", "util-linux_amd_epyc_7451_96cpu_full.txt")
    cpu = probe_cpu(text, root=tmp_path, affinity=8)
    assert cpu["cgroup_cpu_quota"] == 1.5 and cpu["affinity_cores"] == 8 and cpu["usable_cores"] == 2
    assert probe_cpu(text, root=tmp_path, affinity=1)["usable_cores"] == 1


def test_cgroup_v1_quota(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "3:cpu,cpuacct:/docker/abc\n1:memory:/docker/abc\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "400000\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    cpu = probe_cpu(fixture_text("cpuinfo", "util-linux_intel_xeon_X7550_64cpu_full.txt"), root=tmp_path)
    assert cpu["cgroup_cpu_quota"] == 4.0 and cpu["usable_cores"] == 4
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n")
    assert probe_cpu(fixture_text("cpuinfo", "util-linux_intel_xeon_X7550_64cpu_full.txt"), root=tmp_path)["usable_cores"] == 64


def test_sysfs_topology_when_cpuinfo_has_no_core_ids(tmp_path):
    for cpu_id, (pkg, core) in enumerate([(0, 0), (0, 1)]):
        _write(tmp_path, f"sys/devices/system/cpu/cpu{cpu_id}/topology/physical_package_id", f"{pkg}\n")
        _write(tmp_path, f"sys/devices/system/cpu/cpu{cpu_id}/topology/core_id", f"{core}\n")
    cpu = probe_cpu(fixture_text("cpuinfo", "ohai_aarch64_aws_graviton2_2cpu_full.txt"), root=tmp_path)
    assert cpu["physical_cores"] == 2 and cpu["sockets"] == 1


def test_live_machine_matches_proc_cpuinfo():
    cpu = probe_cpu()
    text = Path("/proc/cpuinfo").read_text()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.lower().startswith(("model name", "cpu part"))]
    if "model name" in text:
        assert cpu["model"] == " ".join(names[0].split())
    assert cpu["logical_cores"] == text.count("processor\t:") or cpu["logical_cores"] == len(names)
    assert cpu["affinity_cores"] == len(os.sched_getaffinity(0))
    assert 1 <= cpu["usable_cores"] <= cpu["logical_cores"]
    first_flags = next(line for line in text.splitlines() if line.startswith(("flags", "Features"))).split(":", 1)[1].split()
    assert set(cpu["flags"]) <= set(first_flags)
