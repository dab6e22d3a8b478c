"""The EC2 hardware targets (conf/hardware/ec2_*.yaml) against EC2's own instance-type data (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repro_mlflow.schedulers.config import parse_config
from repro_mlflow.schedulers.ec2.config import EC2Config

HW = Path(__file__).resolve().parents[2] / "conf" / "hardware"
EXPECTED = {  # target: (cpu maker, GPU named in EC2's data or None)
    "ec2_c7i": ("Intel", None), "ec2_c7a": ("AMD", None), "ec2_c7g": ("AWS", None),
    "ec2_g5": ("AMD", "A10G"), "ec2_g4dn": ("Intel", "T4"), "ec2_p4d": ("Intel", "A100"),
}


def test_the_six_targets_exist():
    assert {p.stem for p in HW.glob("ec2_*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_target_matches_its_instance_type(name, aws):
    d = yaml.safe_load((HW / f"{name}.yaml").read_text())
    assert set(d) == {"name", "backend", "gpu", "cpu_arch", "container", "backend_config"}
    assert d["name"] == name and d["backend"] == "ec2"
    cfg = parse_config(EC2Config, d["backend_config"], "ec2")
    [it] = aws.ec2.describe_instance_types(InstanceTypes=[cfg.instance_type])["InstanceTypes"]
    maker, gpu = EXPECTED[name]
    aws_arch = {"x86_64": "x86_64", "aarch64": "arm64"}[d["cpu_arch"]]
    assert aws_arch in it["ProcessorInfo"]["SupportedArchitectures"]
    assert it["ProcessorInfo"]["Manufacturer"] == maker
    # The AMI parameter is for the instance's architecture (Canonical says amd64 for x86_64).
    parts = cfg.ami_ssm_parameter.split("/")
    assert cfg.ami_ssm_parameter.startswith("/aws/service/")
    assert ({"x86_64": {"x86_64", "amd64"}, "arm64": {"arm64"}}[aws_arch] & set(parts))
    if gpu:
        names = [g["Name"] for g in it["GpuInfo"]["Gpus"]]
        assert any(gpu in n for n in names) and gpu in d["gpu"]
        assert "deeplearning" in parts  # a Deep Learning AMI: NVIDIA driver and CUDA
    else:
        assert d["gpu"] is None and "GpuInfo" not in it
