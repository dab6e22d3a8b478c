"""Spot interruption → resubmission (attempt 2); time limit → terminated by sync; cancel → terminated."""

from __future__ import annotations

import json
import os
import signal
import time

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.schedulers.ec2.scheduler import parse_job_id
from tests.ec2.helpers import submit, sync


def _tags(inst: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def test_spot_interruption_is_resubmitted_as_attempt_2(aws, tracking, project, imds):
    client, exp_id, run_ids = submit(aws, tracking, project, 2, entry="nap", params=lambda i: {"s": "1"},
                                     runs_per_instance=2, spot=True, spot_retries=1, max_price="0.5")
    [inst] = aws.instances()
    iid = inst["InstanceId"]
    assert inst.get("InstanceLifecycle") == "spot"
    job_ids = [client.get_run(r).data.tags["repro.job_id"] for r in run_ids]
    _, bucket, batch_key, _ = parse_job_id(job_ids[0])

    # The instance gets a spot interruption notice through IMDSv2 and leaves a marker; then AWS reclaims it.
    imds.spot_action = json.dumps({"action": "terminate", "time": "2026-11-26T12:00:00Z"})
    url = f"http://127.0.0.1:{imds.server_port}"
    proc = aws.boot(iid, imds=url, wait=False, REPRO_EC2_SPOT_POLL_S="0.2")
    marker = f"{batch_key}/slots/0/interrupted-1.json"
    deadline = time.time() + 90
    while not aws.s3.list_objects_v2(Bucket=bucket, Prefix=marker).get("KeyCount"):
        assert time.time() < deadline and proc.poll() is None, aws.console(iid)
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    aws.ec2.terminate_instances(InstanceIds=[iid])

    # sync resubmits the slot: a new spot instance, attempt 2; the runs stay unfinished.
    report = sync(client, exp_id)
    assert report.ended == {}
    live = aws.instances(("pending", "running"))
    assert len(live) == 1 and live[0]["InstanceId"] != iid
    new = live[0]
    assert _tags(new)["repro.attempt"] == "2" and _tags(new)["repro.slot"] == "0"
    assert _tags(new)["repro.batch"] == _tags(inst)["repro.batch"]
    assert new.get("InstanceLifecycle") == "spot"
    assert "ATTEMPT=2" in aws.user_data(new["InstanceId"])
    states = get_scheduler("ec2", {}).poll(job_ids)
    assert {s.attempt for s in states.values()} == {2}
    assert {s.state for s in states.values()} <= {"SCHEDULED", "RUNNING"}
    assert [client.get_run(r).info.status for r in run_ids] == ["SCHEDULED", "SCHEDULED"]

    # Attempt 2 is not interrupted: its runs end FINISHED.
    imds.spot_action = None
    imds.describe(new)
    done = aws.boot(new["InstanceId"], imds=url, REPRO_EC2_SPOT_POLL_S="0.2")
    assert done.returncode == 0, aws.console(new["InstanceId"])
    sync(client, exp_id)
    for rid in run_ids:
        run = client.get_run(rid)
        assert run.info.status == "FINISHED"
        # The worker's fingerprint saw where it ran, through IMDSv2.
        assert run.data.tags["repro.ec2.instance_type"] == "c7i.large"
        assert run.data.tags["repro.site"] == new["Placement"]["AvailabilityZone"]
    aws.assert_none_running()


def test_instance_past_its_time_limit_is_terminated_by_sync(aws, tracking, project):
    client, exp_id, [rid] = submit(aws, tracking, project, 1, entry="nap", time_limit_minutes=0.05)
    [inst] = aws.instances()
    assert "-h +1 " in aws.user_data(inst["InstanceId"])  # the instance's own watchdog, in whole minutes
    while (time.time() - inst["LaunchTime"].timestamp()) < 4:
        time.sleep(0.5)
    report = sync(client, exp_id)
    assert report.ended == {rid: "KILLED"}
    run = client.get_run(rid)
    assert run.info.status == "KILLED"
    reason = run.data.tags["repro.status_reason"]
    assert inst["InstanceId"] in reason and "time limit" in reason and "terminated by repro sync" in reason
    [after] = aws.instances()
    assert after["State"]["Name"] in ("shutting-down", "terminated")
    assert _tags(after)["repro.stop_reason"] == "time-limit"
    aws.assert_none_running()


def test_time_limit_leaves_young_instances_alone(aws, tracking, project):
    client, exp_id, run_ids = submit(aws, tracking, project, 2, entry="nap", runs_per_instance=1, time_limit_minutes=30)
    assert sync(client, exp_id).ended == {}
    assert len(aws.instances(("pending", "running"))) == 2
    scheduler = get_scheduler("ec2", {})
    scheduler.cancel([client.get_run(run_ids[0]).data.tags["repro.job_id"]])
    left = aws.instances(("pending", "running"))
    assert len(left) == 1 and _tags(left[0])["repro.slot"] == "1"
    sync(client, exp_id)
    assert client.get_run(run_ids[0]).info.status == "KILLED"
    assert client.get_run(run_ids[0]).data.tags["repro.status_reason"] == "cancelled"
    assert client.get_run(run_ids[1]).info.status in ("SCHEDULED", "RUNNING")
    scheduler.cancel([client.get_run(run_ids[1]).data.tags["repro.job_id"]])
    sync(client, exp_id)
    assert client.get_run(run_ids[1]).info.status == "KILLED"
    aws.assert_none_running()


def test_poll_only_reads_and_reconcile_terminates(aws, tracking, project):
    """Polling has no side effect: an instance past its time limit is still up after any number of polls;
    `reconcile` (what sync calls after its poll) terminates it."""
    from repro_mlflow.submit.rebuild import scheduler_of

    client, _exp_id, [rid] = submit(aws, tracking, project, 1, entry="nap", time_limit_minutes=0.05)
    [inst] = aws.instances()
    while (time.time() - inst["LaunchTime"].timestamp()) < 4:
        time.sleep(0.5)
    job_id = client.get_run(rid).data.tags["repro.job_id"]
    scheduler = scheduler_of(client.get_run(rid))  # rebuilt from the batch record
    for _ in range(2):
        states = scheduler.poll([job_id])
        assert states[job_id].state == "KILLED" and "time limit" in states[job_id].reason
    [still] = aws.instances()
    assert still["State"]["Name"] in ("pending", "running") and "repro.stop_reason" not in _tags(still)
    assert client.get_run(rid).info.status == "SCHEDULED"  # nor does a poll touch the run

    scheduler.reconcile([job_id], states)
    [after] = aws.instances()
    assert after["State"]["Name"] in ("shutting-down", "terminated")
    assert _tags(after)["repro.stop_reason"] == "time-limit"
    scheduler.reconcile([job_id], states)  # done once: nothing left to do
    aws.assert_none_running()
