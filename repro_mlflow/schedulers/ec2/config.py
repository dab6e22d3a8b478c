"""Settings of `--backend repro-ec2` (`EC2Config`) and the checks that need no AWS call.

Every key is optional so that `repro sync` can build the scheduler with no config (everything it
needs is in the job id and the batch manifest in S3); `EC2Config.require_launchable` says what a
submission is missing, in one line, before anything is uploaded or launched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...errors import ReproError

SSE_KINDS = ("AES256", "aws:kms")
# Names of environment variables that carry credentials: never forwarded to an instance.
_SECRET_NAME = re.compile(r"(^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|SECURITY_TOKEN)$)|SECRET|PASSWORD|TOKEN|CREDENTIAL", re.I)
_SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@dataclass
class EC2Config:
    """Settings of `--backend repro-ec2`; see docs/ec2.md."""

    region: str | None = None  # default: AWS_REGION / AWS_DEFAULT_REGION / the profile's region
    instance_type: str | None = None  # e.g. c7i.xlarge, g5.xlarge
    ami: str | None = None  # an image id, or …
    ami_ssm_parameter: str | None = None  # … an SSM parameter naming one (Deep Learning AMI per architecture)
    subnet_id: str | None = None
    security_group_ids: list | None = None
    instance_profile: str | None = None  # name or ARN; its role needs S3 access to bucket/prefix
    key_name: str | None = None  # optional SSH key pair
    spot: bool = False
    max_price: str | float | None = None  # spot only; default: the on-demand price
    spot_retries: int = 2  # times a slot is resubmitted after a spot interruption
    volume_size_gb: int = 100
    bucket: str | None = None
    prefix: str = "repro"
    runs_per_instance: int = 1
    max_instances: int | None = None  # at most this many instances per batch (the account's limit): a larger batch is refused
    time_limit_minutes: float = 120.0  # per instance; the instance shuts itself down, `repro sync` terminates it
    tags: dict | None = None  # extra tags on instances and volumes
    endpoint_url: str | None = None  # AWS endpoint override (tests); AWS_ENDPOINT_URL works too
    python: str | None = None  # interpreter on the AMI with mlflow-skinny + boto3: skips the venv bootstrap
    pip_packages: list | None = None  # extra packages the bootstrap venv installs (e.g. a framework)
    sse: str = "AES256"  # S3 server-side encryption: AES256 or aws:kms
    kms_key_id: str | None = None  # with sse=aws:kms
    env: dict | None = None  # extra environment variables for the runs (no credentials)

    def __post_init__(self) -> None:
        if self.runs_per_instance < 1:
            raise ValueError("runs_per_instance must be at least 1")
        if self.max_instances is not None and self.max_instances < 1:
            raise ValueError("max_instances must be at least 1")
        if self.time_limit_minutes <= 0:
            raise ValueError("time_limit_minutes must be positive")
        if self.spot_retries < 0:
            raise ValueError("spot_retries must be 0 or more")
        if self.volume_size_gb < 8:
            raise ValueError("volume_size_gb must be at least 8")
        if self.sse not in SSE_KINDS:
            raise ValueError(f"sse must be one of {', '.join(SSE_KINDS)}")
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("kms_key_id needs sse: aws:kms")
        if self.max_price is not None and not self.spot:
            raise ValueError("max_price applies to spot instances only (set spot: true)")
        if self.ami and self.ami_ssm_parameter:
            raise ValueError("give ami or ami_ssm_parameter, not both")
        if self.bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", self.bucket):
            raise ValueError(f"'{self.bucket}' is not a valid S3 bucket name")
        self.prefix = (self.prefix or "").strip("/")

    def resolved_region(self) -> str | None:
        """The region from the config, else the environment/profile (None if nowhere)."""
        if self.region:
            return self.region
        env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if env:
            return env
        import boto3

        return boto3.session.Session().region_name

    def require_launchable(self) -> None:
        """One-line error naming what a submission is missing."""
        missing = [k for k in ("instance_type", "bucket") if not getattr(self, k)]
        if not (self.ami or self.ami_ssm_parameter):
            missing.append("ami or ami_ssm_parameter")
        if missing:
            raise ReproError(f"ec2 backend config is missing: {', '.join(missing)} (see docs/ec2.md)")
        check_no_secrets(self.env or {}, "ec2 backend-config env")


def check_no_secrets(env: dict, where: str) -> None:
    """Refuse environment variables that carry credentials, by name or by value."""
    bad = sorted(k for k in env if _SECRET_NAME.search(str(k)))
    secrets = {os.environ[k] for k in _SECRET_ENV if os.environ.get(k)}
    bad += sorted(k for k, v in env.items() if str(v) in secrets and k not in bad)
    if bad:
        raise ReproError(f"{where}: {', '.join(bad)} would carry credentials to the instance; "
                         "instances get S3 access from their instance profile")


def check_tracking_uri(uri: str) -> str:
    """The tracking URI as the instance sees it; refuse one with a password in it."""
    parts = urlsplit(uri)
    if parts.password:
        raise ReproError("the tracking URI carries a password; EC2 instances never get credentials "
                         "(use a server reachable without one, or let results come back through S3)")
    return uri


def is_remote_tracking(uri: str) -> bool:
    """True for a tracking server an instance might reach (http/https); False for local stores."""
    return urlsplit(uri).scheme in ("http", "https")
