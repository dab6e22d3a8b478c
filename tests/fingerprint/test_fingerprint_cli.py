"""`repro fingerprint` and `python -m repro_mlflow.fingerprint`, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from repro_mlflow.fingerprint import capture
from repro_mlflow.fingerprint.cpu import probe_cpu
from repro_mlflow.fingerprint.gpu import finish, parse_smi_xml

from .helpers import BIN, ROOT, fixture_text

def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))  # at call time: the same environ as capture() below


def repro(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "repro"), "fingerprint", *args], env=_env(), capture_output=True, text=True,
                          timeout=120)


def test_prints_the_record_and_tags(tmp_path):
    p = repro()
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["schema"] == 2 and set(rec["hashes"]) == {"hw", "sw", "env"}
    assert rec["hashes"] == capture()["hashes"]  # same machine, same hashes, across processes
    t = repro("--tags")
    tags = json.loads(t.stdout)
    assert tags["repro.fp.env"] == rec["hashes"]["env"] and tags["repro.hw.cpu.model"] == rec["cpu"]["model"]
    out = tmp_path / "fp.json"
    w = repro("-o", str(out))
    assert w.returncode == 0 and json.loads(out.read_text())["hashes"] == rec["hashes"]
    assert rec["hashes"]["hw"] in w.stderr


def test_module_entry_point_needs_no_mlflow():
    code = ("import sys, runpy; sys.modules['mlflow'] = None; sys.argv = ['x', '--tags'];"
            "runpy.run_module('repro_mlflow.fingerprint', run_name='__main__')")
    p = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "repro.fp.hw" in json.loads(p.stdout)


def _record_file(tmp_path, name, cpu_file, gpu_file):
    rec = capture(environ={})
    rec["cpu"] = probe_cpu(fixture_text("cpuinfo", cpu_file), root="")
    rec["gpu"] = finish(parse_smi_xml(fixture_text("nvidia-smi", gpu_file)), environ={})
    path = tmp_path / name
    path.write_text(json.dumps(rec))
    return path


def test_diff_says_what_differs(tmp_path):
    a = _record_file(tmp_path, "a.json", "archspec_intel_xeon_platinum_8480plus_sapphirerapids_1cpu.txt",
                     "telegraf_nvidia-smi-q-x_A100-SXM4-80GB_drv535.xml")
    b = _record_file(tmp_path, "b.json", "archspec_amd_epyc_9654_zen4_1cpu.txt", "telegraf_nvidia-smi-q-x_TeslaT4_drv515.xml")
    p = repro("--diff", str(a), str(b))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert any(line.startswith("repro.fp.hw") and "DIFFERS" in line for line in lines)
    assert any(line.startswith("repro.fp.sw") and "same" in line for line in lines)
    model = next(line for line in lines if line.strip().startswith("cpu.model "))
    assert "Intel(R) Xeon(R) Platinum 8480+ -> AMD EPYC 9654 96-Core Processor" in model
    flags = next(line for line in lines if line.strip().startswith("cpu.flags "))
    assert flags.split()[-2:] == ["removed", "amx_bf16,amx_int8,amx_tile,avx512_fp16,avx_vnni"]  # EPYC 9654 adds none
    assert any("gpu.devices.0.name" in line and "NVIDIA A100-SXM4-80GB -> Tesla T4" in line for line in lines)
    assert any("gpu.driver" in line and "535.54.03 -> 515.105.01" in line for line in lines)


def test_diff_of_a_record_with_itself(tmp_path):
    a = _record_file(tmp_path, "a.json", "archspec_amd_epyc_7301_zen_1cpu.txt", "telegraf_nvidia-smi-q-x_A10G_drv515.xml")
    p = repro("--diff", str(a), str(a))
    assert p.returncode == 0 and "no differences" in p.stdout and "DIFFERS" not in p.stdout


def test_diff_real_h200_record_against_this_machine(tmp_path):
    here = tmp_path / "here.json"
    assert repro("-o", str(here)).returncode == 0
    p = repro("--diff", str(ROOT / "tests/fixtures/fingerprint/gpu_host/h200_fingerprint.json"), str(here))
    assert p.returncode == 0
    assert "gpu.devices.0.name" in p.stdout or "only in A" in p.stdout
    assert "NVIDIA H200" in p.stdout


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]"])
def test_diff_bad_input_is_one_line_and_nonzero(tmp_path, content):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(capture(environ={})))
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    p = repro("--diff", str(bad), str(good))
    assert p.returncode != 0 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "bad.json" in p.stderr and "Traceback" not in p.stderr
