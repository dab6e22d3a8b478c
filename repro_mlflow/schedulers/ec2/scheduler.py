"""`repro-ec2`: a batch runs on EC2 instances, `runs_per_instance` runs each; results come back through S3.

Submit: pre-launch checks (`aws.preflight`), then one upload of the project, the repro runtime
and the batch manifest (`<prefix>/<batch>/`, SSE, private), then one instance per slot of
`runs_per_instance` runs, each with its own user-data (`userdata.py`), IMDSv2 required,
InstanceInitiatedShutdownBehavior=terminate, tagged `repro.batch`/`repro.slot`/`repro.attempt`.
A failed launch terminates whatever this submission already launched.

Each instance fetches the project, the runtime and the batch record (`record.json`, its worker paths
relative to the instance's work directory) and starts the one worker entry,
`python -m repro_mlflow.runtime record.json <i>`, for each run of its slot.

Poll (one describe_instances per region over every batch, one list_objects_v2 per batch) only
reads: a run's result marker `results/<i>/exit-<rc>` ends it; otherwise its slot's latest instance
says SCHEDULED/RUNNING, or — once gone — why. What acts is `reconcile`, called by sync after each
poll: a spot interruption is resubmitted (attempt + 1, up to `spot_retries`), an instance past its
time limit is terminated (cost safety) and its runs end KILLED with the reason.
Job ids are `<region>/<bucket>/<batch key>/<run index>`.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from collections import defaultdict
from datetime import datetime, UTC
from pathlib import Path
from typing import Any, ClassVar
from collections.abc import Sequence

from botocore.exceptions import ClientError

from ... import tags as T
from ...errors import ReproError
from . import aws
from .config import EC2Config, check_no_secrets, check_tracking_uri, is_remote_tracking
from .userdata import MAX_USER_DATA, SlotRun, render
from .. import staging
from ..protocol import FAILED, FINISHED, KILLED, RUNNING, SCHEDULED, Batch, JobState, SchedulerBase

TAG_BATCH, TAG_SLOT, TAG_ATTEMPT, TAG_STOP = T.EC2_BATCH, T.EC2_SLOT, T.ATTEMPT, T.EC2_STOP
LIVE = ("pending", "running")
SPOT_CODE = "Server.SpotInstanceTermination"
LISTING_GRACE_S = 300  # a batch this young may not be listed by describe_instances yet

__all__ = ["EC2Config", "EC2Scheduler"]


def _job_id(region: str, bucket: str, batch_key: str, index: int) -> str:
    return f"{region}/{bucket}/{batch_key}/{index}"


def parse_job_id(job_id: str) -> tuple[str, str, str, int]:
    """(region, bucket, batch key, run index) of an EC2 job id."""
    parts = job_id.split("/")
    if len(parts) < 4 or not parts[-1].isdigit():
        raise ValueError(f"not an EC2 job id: {job_id}")
    return parts[0], parts[1], "/".join(parts[2:-1]), int(parts[-1])


def _tags(inst: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def _age(inst: dict, now: datetime) -> float:
    return (now - inst["LaunchTime"]).total_seconds()


def _fmt_age(seconds: float) -> str:
    m = int(seconds // 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{int(seconds % 60):02d}s"


class EC2Scheduler(SchedulerBase):
    config_class: ClassVar[type | None] = EC2Config
    """The EC2 scheduler (see the module docstring)."""

    name: ClassVar[str] = "ec2"

    def __init__(self, config: EC2Config | None = None):
        self.config = config or EC2Config()
        self._manifests: dict[tuple[str, str, str], dict] = {}
        self._plan: aws.LaunchPlan | None = None
        # decided by poll, done by reconcile: (region, instance ids) to terminate past their time limit,
        # (region, manifest, slot, next attempt, job ids of the slot) to launch again after a spot interruption
        self._terminate_due: list[tuple[str, list[str]]] = []
        self._relaunch_due: list[tuple[str, dict, int, int, list[str]]] = []

    # -- clients ---------------------------------------------------------------------------
    def _ec2(self, region: str):
        return aws.client("ec2", region, self.config.endpoint_url)

    def _s3(self, region: str):
        return aws.client("s3", region, self.config.endpoint_url)

    # -- submit ----------------------------------------------------------------------------
    def preflight(self) -> aws.LaunchPlan:
        """Every check that needs no run: config, region, credentials, instance type, AMI, bucket (cached)."""
        if self._plan is None:
            self._plan = aws.preflight(self.config)
        return self._plan

    def check_batch_size(self, n: int) -> None:
        """Refuse (one line, before any run exists) a batch that needs more instances than `max_instances`, the
        account's instance limit as the user states it; without it EC2 itself refuses the launch past the
        account's quota, and what this submission already launched is terminated."""
        cfg = self.config
        need = -(-n // cfg.runs_per_instance)
        if cfg.max_instances is not None and need > cfg.max_instances:
            raise ReproError(f"ec2: a batch of {n} runs needs {need} instances at runs_per_instance={cfg.runs_per_instance}, "
                             f"over max_instances={cfg.max_instances}: raise runs_per_instance to "
                             f"{-(-n // cfg.max_instances)} or submit fewer runs at a time")

    def submit(self, batch: Batch) -> list[str]:
        """Check everything, upload once, launch one instance per slot; one job id per run."""
        cfg = self.config
        plan = self.preflight()
        uri = check_tracking_uri(batch.tracking_uri)
        for r in batch.runs:
            check_no_secrets(r.env, f"run {r.run_id} env")
        batch_id = batch.workdir.name
        batch_key = f"{cfg.prefix}/{batch_id}" if cfg.prefix else batch_id
        # Batch workers send no MLflow telemetry (it also races with the runtime's env copy in its reporter thread).
        # A local store is not reachable from EC2 (offline): results come back via S3.
        batch.worker.update(cwd="project", run_dir="runs/{index}", offline=not is_remote_tracking(uri),
                            env={"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true",
                                 **{str(k): str(v) for k, v in (cfg.env or {}).items()}})
        record = self.write_record(batch).read_bytes()  # as the instance reads it: worker paths relative to its root
        n = cfg.runs_per_instance
        slots = [[{"index": i, "run_id": r.run_id} for i, r in list(enumerate(batch.runs))[s:s + n]]
                 for s in range(0, len(batch.runs), n)]
        manifest = {
            "batch_id": batch_id, "batch_key": batch_key, "region": plan.region, "bucket": cfg.bucket,
            "instance_type": cfg.instance_type, "image_id": plan.image_id, "architecture": plan.architecture,
            "gpus": plan.gpus, "spot": cfg.spot, "spot_retries": cfg.spot_retries,
            "time_limit_minutes": cfg.time_limit_minutes, "python": cfg.python,
            "pip": self._pip(), "sse": cfg.sse, "kms_key_id": cfg.kms_key_id,
            "tags": {str(k): str(v) for k, v in (cfg.tags or {}).items()},
            "launch": self._launch_args(plan), "slots": slots, "created": time.time(),
        }
        scripts = [self._userdata(manifest, s, 1) for s in range(len(slots))]
        s3, ec2 = self._s3(plan.region), self._ec2(plan.region)
        self._dry_run(ec2, manifest["launch"])
        sse = aws.sse_args(cfg.sse, cfg.kms_key_id)
        with aws.aws_errors(f"uploading the batch to s3://{cfg.bucket}/{batch_key}"):
            aws.put_bytes(s3, cfg.bucket, f"{batch_key}/project.tar.gz",
                          staging.tar_bytes(batch.project_dir, exclude=batch.workdir), sse)
            aws.put_bytes(s3, cfg.bucket, f"{batch_key}/runtime.tar.gz",
                          staging.tar_bytes(Path(__file__).resolve().parents[2], arcroot="repro_mlflow", quiet=True), sse)
            aws.put_bytes(s3, cfg.bucket, f"{batch_key}/record.json", record, sse)
            aws.put_bytes(s3, cfg.bucket, f"{batch_key}/batch.json", json.dumps(manifest, indent=1).encode(), sse)
        (batch.workdir / "ec2-batch.json").write_text(json.dumps(manifest, indent=1))
        launched: list[str] = []
        try:
            for s, script in enumerate(scripts):
                launched.append(self._launch(ec2, manifest, s, 1, script))
        except BaseException as e:
            try:
                self._terminate(ec2, launched, "launch-failed", wait=True)
            except Exception as t:  # noqa: BLE001 - say which instances to stop by hand
                raise ReproError(f"ec2: launching failed ({aws.aws_message(e)}) and terminating the instances already "
                                 f"launched failed too ({aws.aws_message(t)}): terminate {' '.join(launched)} by hand") from None
            if isinstance(e, Exception) and not isinstance(e, ReproError):  # AWS errors, unparseable replies
                raise ReproError(f"ec2: launching {cfg.instance_type}: {aws.aws_message(e)}"
                                 + (f" (terminated {len(launched)} instance(s) already launched)" if launched else "")) from None
            raise
        (batch.workdir / "ec2-instances.txt").write_text("\n".join(launched) + "\n")
        return [_job_id(plan.region, cfg.bucket, batch_key, i) for i in range(len(batch.runs))]

    @staticmethod
    def _dry_run(ec2, launch: dict[str, Any]) -> None:
        """EC2's own check of the launch (permissions, instance profile, subnet) with DryRun: nothing starts."""
        try:
            ec2.run_instances(DryRun=True, MinCount=1, MaxCount=1, **launch)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "DryRunOperation":
                raise ReproError(f"ec2: the launch would be refused: {aws.aws_message(e)}") from None
        except Exception as e:  # noqa: BLE001 - endpoint or reply trouble
            raise ReproError(f"ec2: checking the launch: {aws.aws_message(e)}") from None

    def _pip(self) -> list[str]:
        import mlflow

        return [f"mlflow-skinny=={mlflow.__version__}", "boto3", *[str(p) for p in (self.config.pip_packages or [])]]

    def _launch_args(self, plan: aws.LaunchPlan) -> dict[str, Any]:
        cfg = self.config
        kw: dict[str, Any] = {
            "ImageId": plan.image_id,
            "InstanceType": cfg.instance_type,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
            "BlockDeviceMappings": [{"DeviceName": plan.root_device, "Ebs": {
                "VolumeSize": cfg.volume_size_gb, "VolumeType": "gp3", "DeleteOnTermination": True, "Encrypted": True}}],
        }
        if cfg.instance_profile:
            key = "Arn" if cfg.instance_profile.startswith("arn:") else "Name"
            kw["IamInstanceProfile"] = {key: cfg.instance_profile}
        if cfg.subnet_id:
            kw["SubnetId"] = cfg.subnet_id
        if cfg.security_group_ids:
            kw["SecurityGroupIds"] = [str(g) for g in cfg.security_group_ids]
        if cfg.key_name:
            kw["KeyName"] = cfg.key_name
        if cfg.spot:
            opts: dict[str, Any] = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            if cfg.max_price is not None:
                opts["MaxPrice"] = str(cfg.max_price)
            kw["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": opts}
        return kw

    @staticmethod
    def _userdata(m: dict, slot: int, attempt: int) -> str:
        runs = [SlotRun(r["index"], r["run_id"]) for r in m["slots"][slot]]
        script = render(bucket=m["bucket"], batch_key=m["batch_key"], region=m["region"], slot=slot, attempt=attempt,
                        runs=runs, time_limit_minutes=m["time_limit_minutes"], spot=m["spot"], python=m["python"],
                        pip=m["pip"], sse=m["sse"], kms_key_id=m["kms_key_id"])
        if len(script.encode()) > MAX_USER_DATA:
            raise ReproError(f"ec2: the user-data of {len(runs)} run(s) is over EC2's 16 KB; lower runs_per_instance")
        return script

    @staticmethod
    def _launch(ec2, m: dict, slot: int, attempt: int, script: str) -> str:
        tags = {**m["tags"], "Name": f"repro-{m['batch_id']}-{slot}", TAG_BATCH: m["batch_id"],
                TAG_SLOT: str(slot), TAG_ATTEMPT: str(attempt)}
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        resp = ec2.run_instances(
            MinCount=1, MaxCount=1, UserData=script, ClientToken=f"{m['batch_id']}-{slot}-{attempt}"[-64:],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}, {"ResourceType": "volume", "Tags": tag_list}],
            **m["launch"],
        )
        return resp["Instances"][0]["InstanceId"]

    @staticmethod
    def _terminate(ec2, ids: list[str], reason: str, wait: bool = False) -> None:
        if not ids:
            return
        ec2.create_tags(Resources=ids, Tags=[{"Key": TAG_STOP, "Value": reason}])
        ec2.terminate_instances(InstanceIds=ids)
        if wait:
            ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 2, "MaxAttempts": 90})

    # -- state -----------------------------------------------------------------------------
    def _manifest(self, region: str, bucket: str, batch_key: str) -> dict | None:
        key = (region, bucket, batch_key)
        if key not in self._manifests:
            try:
                obj = self._s3(region).get_object(Bucket=bucket, Key=f"{batch_key}/batch.json")
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                    return None
                raise ReproError(f"ec2: reading s3://{bucket}/{batch_key}/batch.json: {aws.aws_message(e)}") from None
            self._manifests[key] = json.loads(obj["Body"].read())
        return self._manifests[key]

    def _instances(self, region: str, batch_ids: list[str]) -> dict[str, dict[int, dict]]:
        """batch id -> slot -> its latest-attempt instance (one paginated describe_instances per 200 batches)."""
        out: dict[str, dict[int, dict]] = defaultdict(dict)
        ec2 = self._ec2(region)
        for i in range(0, len(batch_ids), 200):
            with aws.aws_errors("describing instances"):
                found = aws.describe_instances(ec2, [{"Name": f"tag:{TAG_BATCH}", "Values": batch_ids[i:i + 200]}])
            for inst in found:
                t = _tags(inst)
                slot, attempt = int(t.get(TAG_SLOT, -1)), int(t.get(TAG_ATTEMPT, 1))
                cur = out[t[TAG_BATCH]].get(slot)
                if cur is None or attempt > int(_tags(cur).get(TAG_ATTEMPT, 1)):
                    out[t[TAG_BATCH]][slot] = inst
        return out

    def _group(self, job_ids: Sequence[str]) -> dict[tuple[str, str, str], dict[str, int]]:
        groups: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
        for jid in job_ids:
            try:
                region, bucket, batch_key, i = parse_job_id(jid)
            except ValueError:
                continue
            groups[(region, bucket, batch_key)][jid] = i
        return groups

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """States of these jobs (reads only); what to terminate or launch again is left to `reconcile`."""
        self._terminate_due, self._relaunch_due = [], []  # what this poll decides replaces what an earlier one did
        out: dict[str, JobState] = {j: JobState(None, "not an EC2 job id") for j in job_ids}
        groups = self._group(job_ids)
        by_region: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for g in groups:
            by_region[g[0]].append(g)
        now = datetime.now(UTC)
        for region, gs in by_region.items():
            manifests = {g: self._manifest(*g) for g in gs}
            ids = sorted({m["batch_id"] for m in manifests.values() if m})
            instances = self._instances(region, ids) if ids else {}
            s3 = self._s3(region)
            for g in gs:
                m = manifests[g]
                if m is None:
                    for jid in groups[g]:
                        out[jid] = JobState(None, f"no batch manifest at s3://{g[1]}/{g[2]}/batch.json")
                    continue
                with aws.aws_errors(f"listing s3://{g[1]}/{g[2]}"):
                    keys = {o["Key"] for o in aws.list_keys(s3, g[1], f"{g[2]}/")}
                out.update(self._batch_states(region, m, groups[g], instances.get(m["batch_id"], {}), keys, now))
        return out

    def reconcile(self, job_ids: Sequence[str], states: dict[str, JobState]) -> None:
        """Do what the last `poll` decided: terminate instances past their time limit, launch a spot-interrupted
        slot again (its runs' states then name the new instance)."""
        terminate, self._terminate_due = self._terminate_due, []
        relaunch, self._relaunch_due = self._relaunch_due, []
        for region, ids in terminate:
            with aws.aws_errors("terminating instances past their time limit"):
                self._terminate(self._ec2(region), ids, "time-limit")
        for region, m, slot, attempt, jids in relaunch:
            with aws.aws_errors("resubmitting after a spot interruption"):
                new = self._launch(self._ec2(region), m, slot, attempt, self._userdata(m, slot, attempt))
            for jid in jids:
                st = states.get(jid)
                if st is not None:
                    states[jid] = JobState(st.state, f"{st.reason}; resubmitted as {new}", st.attempt)

    def _batch_states(self, region: str, m: dict, jobs: dict[str, int], slots: dict[int, dict], keys: set[str],
                      now: datetime) -> dict[str, JobState]:
        bk, rpi = m["batch_key"], len(m["slots"][0])
        limit_s = m["time_limit_minutes"] * 60
        exits = {int(k.split("/")[-2]): int(k.rsplit("-", 1)[1]) for k in keys
                 if k.startswith(f"{bk}/results/") and k.rsplit("/", 1)[-1].startswith("exit-")}
        cancelled = {int(k.split("/")[-2]) for k in keys if k.startswith(f"{bk}/results/") and k.endswith("/cancel")}
        # Per slot: decide once (time limit, spot resubmission: done by `reconcile`), then derive each run's state.
        slot_state: dict[int, JobState] = {}
        over = [inst["InstanceId"] for inst in slots.values()
                if inst["State"]["Name"] in LIVE and _age(inst, now) > limit_s and TAG_STOP not in _tags(inst)]
        if over:
            self._terminate_due.append((region, over))
        relaunch: list[int] = []
        for slot in sorted({i // rpi for i in jobs.values()}):
            inst = slots.get(slot)
            open_runs = [r for r in m["slots"][slot] if r["index"] not in exits and r["index"] not in cancelled]
            if inst is None:
                if time.time() - m.get("created", 0) < LISTING_GRACE_S:  # describe_instances is eventually consistent
                    slot_state[slot] = JobState(SCHEDULED, None, 1)
                else:
                    slot_state[slot] = JobState(None, f"no EC2 instance found for batch {m['batch_id']} slot {slot}")
                continue
            iid, st, tags = inst["InstanceId"], inst["State"]["Name"], _tags(inst)
            attempt = int(tags.get(TAG_ATTEMPT, 1))
            stop = "time-limit" if iid in over else tags.get(TAG_STOP)
            if stop == "time-limit":
                slot_state[slot] = JobState(KILLED, f"EC2 instance {iid} ran past its time limit "
                                            f"({m['time_limit_minutes']:g} min) and was terminated by repro sync", attempt)
            elif stop == "cancelled":
                slot_state[slot] = JobState(KILLED, "cancelled", attempt)
            elif st == "pending":
                slot_state[slot] = JobState(SCHEDULED, None, attempt)
            elif st == "running":
                slot_state[slot] = JobState(RUNNING, None, attempt)
            else:
                reason = inst.get("StateReason", {}) or {}
                spot = reason.get("Code") == SPOT_CODE or f"{bk}/slots/{slot}/interrupted-{attempt}.json" in keys
                if spot and open_runs and attempt <= m["spot_retries"]:
                    relaunch.append(slot)
                    slot_state[slot] = JobState(SCHEDULED, f"spot interruption of {iid}; to be launched again "
                                                f"(attempt {attempt + 1})", attempt + 1)
                elif spot:
                    slot_state[slot] = JobState(FAILED, f"spot interruption of {iid}; no retries left "
                                                f"(spot_retries={m['spot_retries']})", attempt)
                else:
                    why = reason.get("Message") or st
                    slot_state[slot] = JobState(FAILED, f"EC2 instance {iid} {st} before the run reported a result ({why}); "
                                                f"log: s3://{m['bucket']}/{bk}/slots/{slot}/attempt-{attempt}.log", attempt)
        for slot in relaunch:
            self._relaunch_due.append((region, m, slot, slot_state[slot].attempt or 1,
                                       [jid for jid, i in jobs.items() if i // rpi == slot]))
        out: dict[str, JobState] = {}
        for jid, i in jobs.items():
            attempt = slot_state[i // rpi].attempt if i // rpi in slot_state else None
            if i in exits:
                rc = exits[i]
                out[jid] = JobState(FINISHED, None, attempt) if rc == 0 else JobState(FAILED, f"exit code {rc}", attempt)
            elif i in cancelled:
                out[jid] = JobState(KILLED, "cancelled", attempt)
            else:
                out[jid] = slot_state[i // rpi]
        return out

    # -- cancel / fetch / describe -----------------------------------------------------------
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Mark these runs cancelled in S3; terminate every instance left with only cancelled or finished runs."""
        for (region, bucket, bk), jobs in self._group(job_ids).items():
            m = self._manifest(region, bucket, bk)
            if m is None:
                continue
            s3, ec2 = self._s3(region), self._ec2(region)
            sse = aws.sse_args(m["sse"], m["kms_key_id"])
            with aws.aws_errors("cancelling"):
                for i in jobs.values():
                    aws.put_bytes(s3, bucket, f"{bk}/results/{i}/cancel", b"cancelled\n", sse)
                keys = {o["Key"] for o in aws.list_keys(s3, bucket, f"{bk}/results/")}
                settled = {int(k.split("/")[-2]) for k in keys if k.endswith("/cancel") or "/exit-" in k}
                slots = self._instances(region, [m["batch_id"]]).get(m["batch_id"], {})
                stop = [inst["InstanceId"] for slot, inst in slots.items() if inst["State"]["Name"] in LIVE
                        and all(r["index"] in settled for r in m["slots"][slot])]
                self._terminate(ec2, stop, "cancelled")

    def fetch(self, job_id: str, run_id: str, workdir: Path) -> Path | None:
        """Download the run's results from S3 into `workdir/ec2/<i>`; return its offline bundle, if any."""
        try:
            region, bucket, bk, i = parse_job_id(job_id)
        except ValueError:
            return None
        s3 = self._s3(region)
        dest = Path(workdir) / "ec2" / str(i)
        prefix = f"{bk}/results/{i}/"
        with aws.aws_errors(f"fetching s3://{bucket}/{prefix}"):
            names = {o["Key"][len(prefix):] for o in aws.list_keys(s3, bucket, prefix)}
            if "offline.tar.gz" not in names:
                return None
            dest.mkdir(parents=True, exist_ok=True)
            if "output.log" in names:
                s3.download_file(bucket, prefix + "output.log", str(dest / "output.log"))
            blob = s3.get_object(Bucket=bucket, Key=prefix + "offline.tar.gz")["Body"].read()
        offline = dest / "offline"
        if offline.exists():
            shutil.rmtree(offline)
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(offline, filter="data")  # no absolute paths, links out or devices
        return offline

    def results_path(self, job_id: str, workdir: Path) -> str | None:
        """Where the instance uploads the run's local store: `s3://<bucket>/<batch>/results/<i>/offline.tar.gz`.
        The instance writes the result marker `exit-<rc>` after it, so an ended run without it lost its results
        (a failing S3 read is an error of `fetch`, never taken as missing)."""
        try:
            _region, bucket, bk, i = parse_job_id(job_id)
        except ValueError:
            return None
        return f"s3://{bucket}/{bk}/results/{i}/offline.tar.gz"

    def describe(self, job_ids: Sequence[str]) -> list[dict[str, str]]:
        """Live instances of these jobs' batches, one row each (for `repro status`)."""
        rows: list[dict[str, str]] = []
        now = datetime.now(UTC)
        by_region: dict[str, set[str]] = defaultdict(set)
        for region, _bucket, bk in self._group(job_ids):
            by_region[region].add(bk.rsplit("/", 1)[-1])
        for region, batch_ids in by_region.items():
            for bid, slots in self._instances(region, sorted(batch_ids)).items():
                for slot, inst in sorted(slots.items()):
                    if inst["State"]["Name"] not in LIVE:
                        continue
                    t = _tags(inst)
                    rows.append({"instance": inst["InstanceId"], "type": inst.get("InstanceType", ""),
                                 "state": inst["State"]["Name"], "market": inst.get("InstanceLifecycle", "on-demand"),
                                 "batch": bid, "slot": str(slot), "attempt": t.get(TAG_ATTEMPT, "1"),
                                 "age": _fmt_age(_age(inst, now))})
        return rows
