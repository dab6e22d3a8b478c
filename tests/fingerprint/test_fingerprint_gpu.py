"""GPU probe against recorded nvidia-smi output (A100, A10G, T4, RTX 4000 Ada, H100, H200) and a
real H200 record taken through NVML and through nvidia-smi."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from repro_mlflow.fingerprint import gpu, to_tags

from .helpers import capture_sections, fixture_text

XML = {  # file -> (name, cc from the model table, memory MiB, driver, CUDA driver, MIG mode)
    "telegraf_nvidia-smi-q-x_A100-SXM4-80GB_drv535.xml": ("NVIDIA A100-SXM4-80GB", "8.0", 81920, "535.54.03", "12.2", "Enabled"),
    "telegraf_nvidia-smi-q-x_A10G_drv515.xml": ("NVIDIA A10G", "8.6", 23028, "515.105.01", "11.7", None),
    "telegraf_nvidia-smi-q-x_TeslaT4_drv515.xml": ("Tesla T4", "7.5", 15360, "515.105.01", "11.7", None),
    "telegraf_nvidia-smi-q-x_RTX4000-SFF-Ada_schema-v13.xml": ("NVIDIA RTX 4000 SFF Ada Generation", "8.9", 20475, "595.84", "13.2", None),
}
CAPTURES = {  # nvidia_gpu_exporter capture -> (name, memory MiB)
    "nvidia_gpu_exporter_capture_linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt": ("NVIDIA H100 80GB HBM3", 81559),
    "nvidia_gpu_exporter_capture_linux-x86_64__nvidia-h200__590.48.01.txt": ("NVIDIA H200", 143771),
}


@pytest.mark.parametrize("name", sorted(XML))
def test_smi_xml(name):
    model, cc, mem, driver, cuda, mig = XML[name]
    text = fixture_text("nvidia-smi", name)
    rec = gpu.finish(gpu.parse_smi_xml(text), environ={})
    (dev,) = rec["devices"]
    assert (dev["name"], dev["compute_capability"], dev["compute_capability_source"]) == (model, cc, "table")
    assert (dev["memory_mib"], dev["mig_mode"], rec["driver"], rec["cuda_driver"]) == (mem, mig, driver, cuda)
    raw_uuid = text.split("<uuid>")[1].split("</uuid>")[0]
    assert dev["uuid_hash"] == gpu.uuid_hash(raw_uuid) and raw_uuid not in json.dumps(rec)
    tags = to_tags({"gpu": rec})
    assert (tags["repro.hw.gpu.name"], tags["repro.hw.gpu.cc"], tags["repro.hw.gpu.count"]) == (model, cc, "1")
    assert tags["repro.hw.gpu.driver"] == driver and tags["repro.hw.gpu.cuda_driver"] == cuda


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_smi_q_text_and_csv_agree(name):
    model, mem = CAPTURES[name]
    sec = capture_sections(fixture_text("nvidia-smi", name))
    q = gpu.parse_smi_q(sec["idle :: query (-q)"])
    csv_devices, csv_driver = gpu.parse_smi_csv(sec["idle :: query-gpu (csv, what the exporter parses)"])
    (qd,), (cd,) = q["devices"], csv_devices
    assert (q["driver"], q["cuda_driver"], csv_driver) == ("590.48.01", "13.1", "590.48.01")
    assert qd["name"] == cd["name"] == model and qd["memory_mib"] == cd["memory_mib"] == mem
    assert (cd["compute_capability"], cd["compute_capability_source"]) == ("9.0", "reported")
    assert qd["compute_capability"] == "9.0" and qd["mig_mode"] == cd["mig_mode"] == "Disabled"
    assert qd["uuid_hash"] == cd["uuid_hash"] == gpu.uuid_hash("GPU-00000000-0000-0000-0000-000000000000")
    # the load-time answers describe the same GPU
    assert gpu.parse_smi_q(sec["load :: query (-q)"])["devices"][0]["name"] == model


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_probe_smi_runs_the_query_and_version(name):
    sec = capture_sections(fixture_text("nvidia-smi", name))
    asked = []

    def run(cmd):
        asked.append(cmd)
        if cmd == gpu.SMI_QUERY:
            return sec["idle :: query-gpu (csv, what the exporter parses)"]
        if cmd == ["nvidia-smi", "--version"]:
            return sec["capabilities :: version"]
        return None

    rec = gpu.finish(gpu.probe_smi(run), environ={"CUDA_VISIBLE_DEVICES": "0"})
    assert asked == [gpu.SMI_QUERY, ["nvidia-smi", "--version"]]
    assert rec["source"] == "nvidia-smi" and rec["count"] == 1 and rec["cuda_driver"] == "13.1"
    assert rec["models"] == [[CAPTURES[name][0], "9.0"]] and rec["cuda_visible_devices"] == "0"


def test_probe_smi_old_driver_without_compute_cap_and_version():
    """A driver that refuses the compute_cap field and --version: retry without it, read the banner."""
    sec = capture_sections(fixture_text("nvidia-smi", sorted(CAPTURES)[0]))
    csv_text = sec["idle :: query-gpu (csv, what the exporter parses)"]
    header, row = csv_text.strip().splitlines()[:2]
    cols = [c.strip() for c in header.split(",")]
    keep = [i for i, c in enumerate(cols) if c != "compute_cap"]
    cells = [c.strip() for c in row.split(",")]
    no_cc = ", ".join(cols[i] for i in keep) + "\n" + ", ".join(cells[i] for i in keep) + "\n"

    def run(cmd):
        if cmd == gpu.SMI_QUERY or cmd == ["nvidia-smi", "--version"]:
            return None
        if cmd[0] == "nvidia-smi" and len(cmd) == 3 and "compute_cap" not in cmd[1]:
            return no_cc
        if cmd == ["nvidia-smi"]:
            return sec["idle :: nvidia-smi (default table)"]
        return None

    rec = gpu.probe_smi(run)
    (dev,) = rec["devices"]
    assert (dev["compute_capability"], dev["compute_capability_source"]) == ("9.0", "table")
    assert rec["cuda_driver"] == "13.1" and rec["driver"] == "590.48.01"


def test_no_gpu_here_costs_nothing():
    if shutil.which("nvidia-smi") or shutil.which("rocm-smi"):
        pytest.skip("this machine has a GPU tool")
    t = time.perf_counter()
    rec = gpu.probe_gpu(environ={})
    assert time.perf_counter() - t < 0.2
    assert rec["source"] is None and rec["count"] == 0 and rec["devices"] == []
    assert gpu.probe_nvml() is None  # pynvml is installed here, but there is no driver


def test_cc_table_prefers_longest_model_names():
    assert gpu.cc_from_name("NVIDIA A100-SXM4-40GB") == "8.0"
    assert gpu.cc_from_name("NVIDIA A10G") == "8.6" and gpu.cc_from_name("NVIDIA A10") == "8.6"
    assert gpu.cc_from_name("Tesla V100-SXM2-16GB") == "7.0" and gpu.cc_from_name("Quadro RTX 6000") == "7.5"
    assert gpu.cc_from_name("NVIDIA L40S") == "8.9" and gpu.cc_from_name("Some Future GPU") is None


# A real record taken on an H200 host (tests/fixtures/fingerprint/gpu_host, see SOURCES.md).

def test_real_h200_record_through_nvml():
    record = json.loads(fixture_text("gpu_host", "h200_fingerprint.json"))
    g = record["gpu"]
    assert g["source"] == "nvml" and g["count"] == 1
    assert g["devices"][0]["memory_mib"] == 143771 and g["devices"][0]["mig_mode"] == "Disabled"
    tags = to_tags(record)
    assert tags["repro.hw.gpu.name"] == "NVIDIA H200" and tags["repro.hw.gpu.cc"] == "9.0"
    assert tags["repro.hw.gpu.driver"] == "580.159.04" and tags["repro.hw.gpu.cuda_driver"] == "13.0"
    assert tags["repro.hw.gpu.count"] == "1" and tags["repro.sw.cuda"] == "13.0"
    # the GPU tags and hashes recorded there are the ones this code derives from the record
    # (a change of hash definition would show here: old runs would no longer group with new ones)
    recorded = json.loads(fixture_text("gpu_host", "h200_tags.json"))
    keys = [k for k in recorded if k.startswith(("repro.hw.gpu.", "repro.fp."))]
    assert len(keys) == 11 and {k: recorded[k] for k in keys} == {k: tags[k] for k in keys}


def test_real_h200_nvml_and_smi_paths_agree_and_hide_the_uuid():
    nvml = json.loads(fixture_text("gpu_host", "h200_fingerprint.json"))["gpu"]
    smi = json.loads(fixture_text("gpu_host", "h200_gpu_smi.json"))
    devices, driver = gpu.parse_smi_csv(fixture_text("gpu_host", "h200_smi_query.csv"))
    versions = gpu.parse_smi_version(fixture_text("gpu_host", "h200_smi_version.txt"))
    for key in ("name", "compute_capability", "memory_mib", "uuid_hash", "mig_mode"):
        assert nvml["devices"][0][key] == smi["devices"][0][key] == devices[0][key], key
    assert nvml["driver"] == smi["driver"] == driver == versions["driver"]
    assert nvml["cuda_driver"] == versions["cuda_driver"] == "13.0"
    raw_uuid = fixture_text("gpu_host", "h200_smi_query.csv").splitlines()[1].split(", ")[2]
    assert raw_uuid.startswith("GPU-") and gpu.uuid_hash(raw_uuid) == nvml["devices"][0]["uuid_hash"]
    assert raw_uuid not in fixture_text("gpu_host", "h200_fingerprint.json")
    assert raw_uuid not in fixture_text("gpu_host", "h200_tags.json")
