"""`repro-ec2`: instances packed with `runs_per_instance` runs, results through S3 (imports boto3)."""

from .config import EC2Config
from .scheduler import EC2Scheduler

__all__ = ["EC2Config", "EC2Scheduler"]
