"""Bad input: a one-line error before anything is uploaded or launched, and no run left behind."""

from __future__ import annotations

import json
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers.ec2.config import check_tracking_uri
from repro_mlflow.errors import ReproError
from tests.ec2.conftest import CREDS
from tests.ec2.helpers import submit


def _nothing_happened(aws, tracking) -> None:
    assert aws.instances() == []
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount", 0) == 0
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ec2")
    assert exp is None or client.search_runs([exp.experiment_id]) == []


@pytest.mark.parametrize("override, message", [
    ({"instance_type": "c7x.huge"}, "unknown instance type 'c7x.huge'"),
    ({"region": "mars-north-1"}, "unknown region 'mars-north-1'"),
    ({"bucket": "no-such-bucket"}, "S3 bucket 'no-such-bucket' does not exist"),
    ({"instance_type": "c7g.large"}, "is x86_64 but c7g.large runs arm64"),
    ({"ami_ssm_parameter": "/repro/no/such/ami"}, "reading SSM parameter /repro/no/such/ami"),
    ({"instance_profile": "no-such-profile"}, "launch would be refused: NoSuchEntity: Instance profile no-such-profile not found"),
    ({"bucket": None}, "missing: bucket"),
    ({"env": {"AWS_SECRET_ACCESS_KEY": "x"}}, "would carry credentials"),
    ({"env": {"SOME_VAR": CREDS["AWS_SESSION_TOKEN"]}}, "would carry credentials"),
    ({"runs_per_instance": 0}, "runs_per_instance must be at least 1"),
    ({"max_instances": 1}, "a batch of 2 runs needs 2 instances at runs_per_instance=1, over max_instances=1: "
                           "raise runs_per_instance to 2"),
    ({"sse": "none"}, "sse must be one of AES256, aws:kms"),
    ({"max_price": "0.1"}, "max_price applies to spot instances only"),
    ({"instance_tipe": "c7i.large"}, "unknown ec2 backend-config key(s): instance_tipe"),
])
def test_bad_config_is_one_line_and_launches_nothing(aws, tracking, project, override, message):
    with pytest.raises(ReproError) as e:
        submit(aws, tracking, project, 2, **override)
    assert message in str(e.value) and "\n" not in str(e.value)
    _nothing_happened(aws, tracking)


def test_no_credentials(aws, tracking, project, monkeypatch):
    for k in CREDS:
        monkeypatch.delenv(k)
    with pytest.raises(ReproError, match="no AWS credentials found"):
        submit(aws, tracking, project, 1)
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    _nothing_happened(aws, tracking)


def test_tracking_uri_with_a_password_is_refused():
    with pytest.raises(ReproError, match="carries a password"):
        check_tracking_uri("https://alice:hunter2@mlflow.example.org")
    assert check_tracking_uri("https://mlflow.example.org") == "https://mlflow.example.org"


def test_mlflow_run_cli_bad_instance_type(aws, tracking, project, cli_env, tmp_path):
    cfg = tmp_path / "ec2.json"
    cfg.write_text(json.dumps(aws.config(instance_type="c7x.huge")))
    p = subprocess.run(["mlflow", "run", str(project), "-e", "hello", "--backend", "repro-ec2", "--backend-config", str(cfg)],
                       env=cli_env, capture_output=True, text=True, timeout=180)
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.splitlines() if "unknown instance type 'c7x.huge'" in ln]
    assert len(lines) == 1, p.stderr
    _nothing_happened(aws, tracking)


def test_a_launch_failing_half_way_terminates_what_it_launched(aws, tracking, project):
    """A /28 subnet holds 11 instances: the 12th launch fails, and the 11 already up are terminated."""
    vpc = aws.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/28")["Subnet"]["SubnetId"]
    with pytest.raises(ReproError) as e:
        submit(aws, tracking, project, 12, runs_per_instance=1, subnet_id=subnet)
    msg = str(e.value)
    assert "ec2: launching c7i.large" in msg and "terminated 11 instance(s) already launched" in msg and "\n" not in msg
    gone = aws.instances()
    assert len(gone) == 11 and {i["State"]["Name"] for i in gone} == {"terminated"}
    assert {t["Value"] for i in gone for t in i["Tags"] if t["Key"] == "repro.stop_reason"} == {"launch-failed"}
    client = MlflowClient(tracking)
    assert client.search_runs([client.get_experiment_by_name("ec2").experiment_id]) == []
    aws.assert_none_running()
