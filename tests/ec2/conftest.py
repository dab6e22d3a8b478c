"""EC2 backend fixtures: moto in server mode on 127.0.0.1 (EC2, S3, IAM, SSM, KMS), a tiny project,
and a stand-in instance that runs a launched instance's real user-data on this machine."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from tests.services import free_port


REGION = "us-east-1"
# Distinctive fake credentials: the secret scan looks for these anywhere an instance can see.
CREDS = {
    "AWS_ACCESS_KEY_ID": "REPROTESTACCESSKEYID7Q2Z",
    "AWS_SECRET_ACCESS_KEY": "reproTestSecret/9fK2mX7qLw0pZ4vN8bR1tY6uJ3hG5dS",
    "AWS_SESSION_TOKEN": "reproTestSessionToken+Qm9ndXNUb2tlbkZvclRlc3Rz",
}
# moto's Amazon Linux AMIs per architecture, published under these SSM parameters.
AMI_PARAM = {"x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
             "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"}




@pytest.fixture(scope="module")
def moto_url():
    """A moto server for this test module; stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, migrated once (migrations take seconds on a busy machine)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    from mlflow.tracking import MlflowClient

    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking(tmp_path, monkeypatch, _template_db) -> str:
    """The shared `tracking` fixture, from a copy of a migrated store."""
    import shutil

    import mlflow

    shutil.copy(_template_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "repro"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@dataclass
class AWS:
    url: str
    ec2: object
    s3: object
    bucket: str
    profile_arn: str
    tmp: Path

    def config(self, **kw) -> dict:
        """A backend config for this moto account."""
        return {"region": REGION, "instance_type": "c7i.large", "ami_ssm_parameter": AMI_PARAM["x86_64"],
                "bucket": self.bucket, "instance_profile": "repro-worker", "python": sys.executable,
                "tags": {"project": "repro-tests"}, **kw}

    def instances(self, states=("pending", "running", "shutting-down", "stopping", "stopped", "terminated")) -> list[dict]:
        out = []
        for page in self.ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-state-name", "Values": list(states)}]):
            for r in page["Reservations"]:
                out.extend(r["Instances"])
        return out

    def assert_none_running(self) -> None:
        live = [i["InstanceId"] for i in self.instances(("pending", "running", "stopping", "stopped"))]
        assert live == [], f"instances left running: {live}"

    def user_data(self, instance_id: str) -> str:
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        return base64.b64decode(attr["UserData"]["Value"]).decode()

    def boot(self, instance_id: str, imds: str | None = None, wait: bool = True, **env) -> subprocess.Popen:
        """Run the instance's user-data for real in a directory standing in for the instance.

        The environment is what an instance has: no MLflow settings, S3 through AWS_ENDPOINT_URL, and
        credentials standing in for its instance profile. `shutdown -h now` terminates the instance
        through the API, as InstanceInitiatedShutdownBehavior=terminate does.
        """
        root = self.tmp / "instances" / instance_id
        root.mkdir(parents=True, exist_ok=True)
        script = root / "user-data"
        script.write_text(self.user_data(instance_id))
        stub = root / "shutdown"
        stub.write_text(
            "#!/bin/bash\n# stand-in for shutdown(8) on an instance that terminates on shutdown\n"
            '[ "${2:-}" = now ] || exit 0\n'
            f'exec {sys.executable} -c "import boto3, os; boto3.client(\'ec2\').terminate_instances('
            "InstanceIds=[os.environ['REPRO_TEST_INSTANCE_ID']])\"\n")
        stub.chmod(0o755)
        e = {"PATH": os.environ["PATH"], "HOME": str(root), "LANG": "C.UTF-8", **CREDS,
             "AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": REGION,
             "AWS_CONFIG_FILE": str(root / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
             "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds or f"http://127.0.0.1:{free_port()}",
             "REPRO_EC2_ROOT": str(root / "root"), "REPRO_EC2_SHUTDOWN": str(stub),
             "REPRO_TEST_INSTANCE_ID": instance_id, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
        proc = subprocess.Popen(["bash", str(script)], env=e, cwd=root, stdout=open(root / "console.log", "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait(proc)
        return proc

    @staticmethod
    def wait(proc: subprocess.Popen, timeout: float = 180) -> int:
        """Wait for a booted instance's user-data to end (killed past `timeout` s); its exit code."""
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise

    def console(self, instance_id: str) -> str:
        return (self.tmp / "instances" / instance_id / "console.log").read_text(errors="replace")


@pytest.fixture
def aws(moto_url, tmp_path, monkeypatch) -> AWS:
    """A fresh moto account: a bucket, an instance profile for the workers; credentials in the env."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).read()
    for k in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="repro-results")
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="repro-worker", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))
    prof = iam.create_instance_profile(InstanceProfileName="repro-worker")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="repro-worker", RoleName="repro-worker")
    a = AWS(moto_url, boto3.client("ec2", region_name=REGION), s3, "repro-results", prof["Arn"], tmp_path)
    yield a
    live = [i["InstanceId"] for i in a.instances(("pending", "running", "stopping", "stopped"))]
    if live:  # never leave one behind, even when a test failed half-way
        a.ec2.terminate_instances(InstanceIds=live)


@pytest.fixture
def project(tmp_path) -> Path:
    """A tiny MLflow project: `hello` logs a metric; `nap` sleeps."""
    d = tmp_path / "proj"
    d.mkdir()
    (d / "MLproject").write_text(
        "name: tiny\nentry_points:\n"
        "  hello:\n    parameters:\n      x: {type: int, default: 1}\n"
        "    command: python hello.py {x}\n"
        "  nap:\n    parameters:\n      s: {type: float, default: 1}\n"
        "    command: sleep {s}\n"
        "  fail:\n    parameters:\n      code: {type: int, default: 3}\n"
        "    command: python -c 'import sys; sys.exit({code})'\n")
    (d / "hello.py").write_text(
        "import os, sys\nfrom mlflow.tracking import MlflowClient\n"
        "MlflowClient().log_metric(os.environ['MLFLOW_RUN_ID'], 'x_squared', int(sys.argv[1]) ** 2)\n"
        "print('hello from', os.uname().nodename)\n")
    return d


class IMDS(ThreadingHTTPServer):
    """An IMDSv2 stand-in: tokens by PUT, metadata only with a token; `spot_action` once interrupted.

    `describe(instance)` serves that instance's metadata (paths as in amazon-ec2-metadata-mock's
    defaults, ../shared/fixtures/ec2/)."""

    spot_action: str | None = None
    meta: dict[str, str] = {}

    def describe(self, inst: dict) -> None:
        az = inst["Placement"]["AvailabilityZone"]
        self.meta = {"instance-id": inst["InstanceId"], "instance-type": inst["InstanceType"], "ami-id": inst["ImageId"],
                     "placement/availability-zone": az, "placement/region": az[:-1],
                     "instance-life-cycle": inst.get("InstanceLifecycle", "on-demand")}


class _IMDSHandler(BaseHTTPRequestHandler):
    def log_message(self, *a):  # quiet
        pass

    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._send("imds-token-1")
        else:
            self.send_error(400)

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != "imds-token-1":
            self.send_error(401)
        elif self.path == "/latest/meta-data/spot/instance-action" and self.server.spot_action:
            self._send(self.server.spot_action)
        elif self.path.startswith("/latest/meta-data/") and self.path[18:] in self.server.meta:
            self._send(self.server.meta[self.path[18:]])
        else:
            self.send_error(404)

    def _send(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def imds():
    srv = IMDS(("127.0.0.1", 0), _IMDSHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
