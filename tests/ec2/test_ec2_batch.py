"""A batch of 6 runs on 2 EC2 instances (moto server), the user-data run for real, results back through S3."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import boto3

import importlib.util

from repro_mlflow.schedulers.ec2.scheduler import parse_job_id
from tests.ec2.conftest import AMI_PARAM, CREDS, REGION
from tests.ec2.helpers import submit, sync

# The runtime's offline store (docs/architecture.md "Offline results contract"), once it is in the tree.
OFFLINE_CONTRACT = importlib.util.find_spec("repro_mlflow.runtime.offline") is not None

def _all_objects(aws) -> list[str]:
    keys = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _texts(blob: bytes) -> list[bytes]:
    """The bytes of an object, and of every member if it is a gzipped tarball."""
    out = [blob]
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            out += [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]
    except tarfile.TarError:
        pass
    return out


def test_six_runs_on_two_instances_end_finished(aws, tracking, project, cli_env):
    client, exp_id, run_ids = submit(aws, tracking, project, 6, runs_per_instance=3)

    # Two instances of the right type, tagged, IMDSv2 only, with the instance profile, terminating on shutdown.
    insts = aws.instances()
    assert len(insts) == 2
    ami = boto3.client("ssm", region_name=REGION).get_parameter(Name=AMI_PARAM["x86_64"])["Parameter"]["Value"]
    batch_ids = set()
    for inst in insts:
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert inst["InstanceType"] == "c7i.large"
        assert inst["ImageId"] == ami
        assert inst["State"]["Name"] in ("pending", "running")
        assert inst["MetadataOptions"]["HttpTokens"] == "required"
        assert inst["IamInstanceProfile"]["Arn"] == aws.profile_arn
        assert tags["repro.attempt"] == "1" and tags["project"] == "repro-tests"
        batch_ids.add(tags["repro.batch"])
        attr = aws.ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior")
        assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    assert len(batch_ids) == 1
    slots = {int({t["Key"]: t["Value"] for t in i["Tags"]}["repro.slot"]): i["InstanceId"] for i in insts}
    assert sorted(slots) == [0, 1]

    # Runs 0-2 are in slot 0's user-data, 3-5 in slot 1's.
    for slot, iid in slots.items():
        ud = aws.user_data(iid)
        for k, rid in enumerate(run_ids):
            assert (rid in ud) == (k // 3 == slot)

    runs = [client.get_run(r) for r in run_ids]
    assert {r.info.status for r in runs} == {"SCHEDULED"}
    assert [parse_job_id(r.data.tags["repro.job_id"])[3] for r in runs] == list(range(6))

    # While the instances have not reported, sync ends nothing; `repro status` lists them with their age.
    assert sync(client, exp_id).ended == {}
    st = subprocess.run(["repro", "status", "--experiment", "ec2"], env={**cli_env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)
    assert st.returncode == 0, st.stderr
    for iid in slots.values():
        assert iid in st.stdout
    assert "age" in st.stdout

    # The instances run their user-data (for real, here) side by side, as two instances do, and shut down: terminated.
    booted = {iid: aws.boot(iid, wait=False) for iid in slots.values()}
    for iid, proc in booted.items():
        assert aws.wait(proc) == 0, aws.console(iid)
    aws.ec2.get_waiter("instance_terminated").wait(InstanceIds=list(slots.values()), WaiterConfig={"Delay": 1, "MaxAttempts": 10})

    # `repro sync` brings the results back from S3 and ends every run FINISHED.
    out = subprocess.run(["repro", "sync", "--experiment", "ec2"], env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for k, rid in enumerate(run_ids):
        run = client.get_run(rid)
        assert run.info.status == "FINISHED", (run.data.tags.get("repro.status_reason"), aws.console(slots[k // 3]))
        assert run.data.metrics["x_squared"] == k * k
        assert run.data.tags.get("repro.fp.hw")
        if OFFLINE_CONTRACT:  # the instance could not reach the sqlite store: results came back as a bundle
            assert run.data.tags.get("repro.offline") == "1" and run.data.tags.get("repro.replayed")
    keys = _all_objects(aws)
    assert sum(k.rsplit("/", 1)[-1] == "exit-0" for k in keys) == 6

    # Every object repro wrote is encrypted at rest and private.
    assert keys
    for key in keys:
        assert aws.s3.head_object(Bucket=aws.bucket, Key=key).get("ServerSideEncryption") == "AES256", key
        grants = aws.s3.get_object_acl(Bucket=aws.bucket, Key=key)["Grants"]
        assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants), (key, grants)
        assert not any("AllUsers" in g["Grantee"].get("URI", "") or "AuthenticatedUsers" in g["Grantee"].get("URI", "")
                       for g in grants)

    # No credential of the submitting environment reached an instance (user-data, tags, uploads), nor came back in results.
    visible = [aws.user_data(i).encode() for i in slots.values()]
    visible += [json.dumps(i.get("Tags", [])).encode() for i in aws.instances()]
    for key in keys:
        visible += _texts(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    for secret in CREDS.values():
        assert not any(secret.encode() in blob for blob in visible), "a credential reached the instance"
    aws.assert_none_running()


def test_kms_encryption_a_failing_run_and_results_lost_in_s3(aws, tracking, project):
    """sse=aws:kms puts the key on every object; a run whose command fails ends FAILED with its exit code; a run
    that finished but whose uploaded local store is gone from S3 ends FAILED "local results lost", never FINISHED."""
    from mlflow.tracking import MlflowClient

    from repro_mlflow.schedulers import get_scheduler
    from repro_mlflow.submit.batch import submit_batch
    from repro_mlflow.submit.project import make_spec

    key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    client = MlflowClient(tracking)
    exp_id = client.create_experiment("ec2")
    scheduler = get_scheduler("ec2", aws.config(runs_per_instance=3, sse="aws:kms", kms_key_id=key_id))
    specs = [make_spec(project, "hello", {"x": "3"}), make_spec(project, "fail", {"code": "3"}),
             make_spec(project, "hello", {"x": "4"})]
    run_ids = submit_batch(client, scheduler, specs, project, exp_id, tracking)
    [inst] = aws.instances()
    proc = aws.boot(inst["InstanceId"])
    assert proc.returncode == 0, aws.console(inst["InstanceId"])
    _region, bucket, bk, i = parse_job_id(client.get_run(run_ids[2]).data.tags["repro.job_id"])
    keys = _all_objects(aws)
    assert f"{bk}/results/{i}/exit-0" in keys and f"{bk}/results/{i}/offline.tar.gz" in keys
    aws.s3.delete_object(Bucket=bucket, Key=f"{bk}/results/{i}/offline.tar.gz")  # a bucket lifecycle rule, a cleanup
    sync(client, exp_id)
    ok, bad, lost = (client.get_run(r) for r in run_ids)
    assert ok.info.status == "FINISHED" and ok.data.metrics["x_squared"] == 9
    assert bad.info.status == "FAILED" and bad.data.tags["repro.status_reason"] == "exit code 3"
    assert lost.info.status == "FAILED" and lost.data.metrics == {}
    assert lost.data.tags["repro.status_reason"] == f"local results lost: s3://{bucket}/{bk}/results/{i}/offline.tar.gz missing"
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket):
        for o in page["Contents"]:
            h = aws.s3.head_object(Bucket=aws.bucket, Key=o["Key"])
            assert h["ServerSideEncryption"] == "aws:kms" and key_id in h["SSEKMSKeyId"], o["Key"]
    aws.assert_none_running()
