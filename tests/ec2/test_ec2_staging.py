"""No credential reaches an EC2 instance: a project with every credential planted, in a folder and in a git
checkout that tracks them, submitted to moto; the upload holds none, and the instance (its user-data run
for real) finds none where it runs the project."""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.ec2.helpers import submit, sync
from tests.planted import MARKER, NOTICE, ORDINARY, make_git_checkout, plant, planted_in


def _objects(aws) -> dict[str, bytes]:
    out = {}
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = aws.s3.get_object(Bucket=aws.bucket, Key=o["Key"])["Body"].read()
    return out


@pytest.mark.parametrize("git", [False, True], ids=["folder", "git"])
def test_no_planted_credential_is_uploaded_or_seen_on_the_instance(git, aws, tracking, project, capfd):
    text = (project / "MLproject").read_text()
    (project / "MLproject").write_text(text + "  check:\n    command: python check_staged.py\n")
    plant(project)
    if git:
        make_git_checkout(project)
    capfd.readouterr()
    client, exp_id, [rid] = submit(aws, tracking, project, 1, entry="check", params=lambda i: {})
    assert capfd.readouterr().err.splitlines().count(NOTICE) == 1

    objects = _objects(aws)
    [key] = [k for k in objects if k.endswith("/project.tar.gz")]
    with tarfile.open(fileobj=io.BytesIO(objects[key])) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
        blobs = [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]
    assert planted_in(names) == [] and set(ORDINARY) <= set(names)
    assert not any(MARKER.encode() in b for b in [*objects.values(), *blobs])  # nor in user-data's manifest
    if git:
        return  # the upload is the same rule either way; one instance boots, below

    [inst] = aws.instances()
    proc = aws.boot(inst["InstanceId"])
    assert proc.returncode == 0, aws.console(inst["InstanceId"])
    sync(client, exp_id)
    run = client.get_run(rid)
    log = next(v for k, v in _objects(aws).items() if k.endswith("/output.log")).decode()
    assert run.info.status == "FINISHED", (run.data.tags.get("repro.status_reason"), log[-2000:])
    assert "planted credentials seen here: none" in log and f"ordinary files seen here: {len(ORDINARY)}" in log
