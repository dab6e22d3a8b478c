"""boto3 plumbing for the EC2 backend: clients, pre-launch checks, S3 objects written encrypted.

Every AWS error that reaches the user becomes a one-line `ReproError`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from collections.abc import Iterator

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ...errors import ReproError
from .config import EC2Config


def session(region: str) -> boto3.session.Session:
    """A boto3 session for `region` (credentials from the usual chain)."""
    return boto3.session.Session(region_name=region)


def client(service: str, region: str, endpoint_url: str | None = None):
    """A boto3 client; `endpoint_url` (or AWS_ENDPOINT_URL, which boto3 reads itself) points it elsewhere."""
    cfg = BotoConfig(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return session(region).client(service, endpoint_url=endpoint_url or None, config=cfg)


def aws_message(e: BaseException, limit: int = 300) -> str:
    """An AWS error on one line (cut to `limit` characters)."""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        text = f"{err.get('Code', 'Error')}: {err.get('Message', str(e))}"
    else:
        text = str(e)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn AWS errors while `doing` into a one-line ReproError."""
    try:
        yield
    except NoCredentialsError:
        raise ReproError("no AWS credentials found (set up a profile, SSO or environment credentials)") from None
    except (ClientError, BotoCoreError) as e:
        raise ReproError(f"ec2: {doing}: {aws_message(e)}") from None


@dataclass
class LaunchPlan:
    """What the pre-launch checks resolved."""

    region: str
    image_id: str
    architecture: str
    root_device: str
    gpus: str  # e.g. "1x NVIDIA A10G", or ""


def check_region(region: str | None) -> str:
    """A known EC2 region, or a one-line error."""
    if not region:
        raise ReproError("ec2: no region (set region in the backend config, or AWS_REGION)")
    sess = boto3.session.Session()
    known = {r for p in sess.get_available_partitions() for r in sess.get_available_regions("ec2", partition_name=p)}
    if region not in known:
        raise ReproError(f"ec2: unknown region '{region}'")
    return region


def check_credentials(region: str) -> None:
    """Fail in one line when no credentials are configured (nothing is called)."""
    if session(region).get_credentials() is None:
        raise ReproError("no AWS credentials found (set up a profile, SSO or environment credentials)")


def preflight(cfg: EC2Config) -> LaunchPlan:
    """Everything checkable before a launch: region, credentials, instance type, AMI and its architecture, bucket."""
    cfg.require_launchable()
    region = check_region(cfg.resolved_region())
    check_credentials(region)
    ec2 = client("ec2", region, cfg.endpoint_url)
    try:
        types = ec2.describe_instance_types(InstanceTypes=[cfg.instance_type])["InstanceTypes"]
    except ClientError as e:
        if "InvalidInstanceType" in aws_message(e):
            raise ReproError(f"ec2: unknown instance type '{cfg.instance_type}' in {region}") from None
        raise ReproError(f"ec2: checking instance type: {aws_message(e)}") from None
    except NoCredentialsError:
        raise ReproError("no AWS credentials found (set up a profile, SSO or environment credentials)") from None
    except BotoCoreError as e:
        raise ReproError(f"ec2: checking instance type: {aws_message(e)}") from None
    if not types:
        raise ReproError(f"ec2: unknown instance type '{cfg.instance_type}' in {region}")
    itype = types[0]
    archs = itype.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    gpus = ", ".join(f"{g.get('Count', 1)}x {g.get('Manufacturer', '')} {g.get('Name', '')}".strip()
                     for g in itype.get("GpuInfo", {}).get("Gpus", []))
    image_id = cfg.ami
    if cfg.ami_ssm_parameter:
        with aws_errors(f"reading SSM parameter {cfg.ami_ssm_parameter}"):
            image_id = client("ssm", region, cfg.endpoint_url).get_parameter(Name=cfg.ami_ssm_parameter)["Parameter"]["Value"]
    with aws_errors(f"describing AMI {image_id}"):
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        raise ReproError(f"ec2: AMI {image_id} not found in {region}")
    arch = images[0].get("Architecture", "")
    if archs and arch not in archs:
        raise ReproError(f"ec2: AMI {image_id} is {arch} but {cfg.instance_type} runs {'/'.join(archs)}")
    s3 = client("s3", region, cfg.endpoint_url)
    try:
        s3.head_bucket(Bucket=cfg.bucket)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise ReproError(f"ec2: S3 bucket '{cfg.bucket}' does not exist") from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise ReproError(f"ec2: no access to S3 bucket '{cfg.bucket}'") from None
        raise ReproError(f"ec2: checking S3 bucket '{cfg.bucket}': {aws_message(e)}") from None
    except BotoCoreError as e:
        raise ReproError(f"ec2: checking S3 bucket '{cfg.bucket}': {aws_message(e)}") from None
    return LaunchPlan(region, image_id, arch, images[0].get("RootDeviceName") or "/dev/xvda", gpus)


def sse_args(sse: str, kms_key_id: str | None) -> dict[str, str]:
    """Server-side encryption arguments for every object repro writes."""
    return {"ServerSideEncryption": sse, **({"SSEKMSKeyId": kms_key_id} if kms_key_id else {})}


def put_bytes(s3, bucket: str, key: str, body: bytes, sse: dict[str, str]) -> None:
    """Write one private, encrypted object (no ACL is ever set: bucket-owner only)."""
    s3.put_object(Bucket=bucket, Key=key, Body=body, **sse)


def list_keys(s3, bucket: str, prefix: str) -> list[dict]:
    """Every object under `prefix` (list_objects_v2, paginated)."""
    out: list[dict] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


def describe_instances(ec2, filters: list[dict]) -> list[dict]:
    """Every instance matching `filters` (describe_instances, paginated)."""
    out: list[dict] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for res in page.get("Reservations", []):
            out.extend(res.get("Instances", []))
    return out
