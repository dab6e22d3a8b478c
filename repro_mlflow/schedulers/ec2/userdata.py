"""The user-data (cloud-init bash) that turns a fresh EC2 instance into a repro worker.

One script per instance ("slot"): bootstrap Python (or use `python` from the config), fetch the
project, the repro runtime and the batch record from S3, start the slot's runs one after another as
the one worker entry `python -m repro_mlflow.runtime record.json <i>`, upload each run's offline store (a tarball), log and a result marker
(`results/<i>/exit-<code>`, written last), then shut down (the instance is launched with
InstanceInitiatedShutdownBehavior=terminate). S3 access comes from the instance profile: the script
holds no credentials. A spot instance watches IMDSv2 for an interruption notice and leaves a marker.

Knobs read from the environment, for running the script somewhere that is not a fresh instance
(the tests run it on the submitting machine): REPRO_EC2_ROOT (work directory, default
/var/lib/repro), REPRO_EC2_SHUTDOWN (shutdown command, default `shutdown`),
AWS_EC2_METADATA_SERVICE_ENDPOINT (IMDS), AWS_ENDPOINT_URL (S3), REPRO_EC2_SPOT_POLL_S.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

MAX_USER_DATA = 16 * 1024  # EC2's limit, before base64

_TEMPLATE = r"""#!/bin/bash
# repro-mlflow EC2 worker: batch @BATCH_KEY@ slot @SLOT@ attempt @ATTEMPT@ (see repro_mlflow/schedulers/ec2/userdata.py)
set -u
ROOT="${REPRO_EC2_ROOT:-/var/lib/repro}"
SHUTDOWN="${REPRO_EC2_SHUTDOWN:-shutdown}"
IMDS="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}"; IMDS="${IMDS%/}"
BUCKET=@BUCKET@
BATCH=@BATCH_KEY@
SLOT=@SLOT@
ATTEMPT=@ATTEMPT@
SPOT=@SPOT@
PYTHON=@PYTHON@
export AWS_DEFAULT_REGION=@REGION@
mkdir -p "$ROOT" && cd "$ROOT" || exit 1
exec > >(tee -a "$ROOT/userdata.log") 2>&1
echo "repro: slot $SLOT attempt $ATTEMPT starting $(date -u +%FT%TZ)"

finish() {
  trap - EXIT
  [ -f "$ROOT/s3.py" ] && "$PYTHON" "$ROOT/s3.py" put "$ROOT/userdata.log" "$BATCH/slots/$SLOT/attempt-$ATTEMPT.log"
  [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
  $SHUTDOWN -h now
}
trap finish EXIT
# Cost safety: whatever happens below, the machine goes down at its time limit.
$SHUTDOWN -h +@LIMIT_MIN@ >/dev/null 2>&1 &

if [ -z "$PYTHON" ]; then
  PY3=$(command -v python3.12 || command -v python3.11 || command -v python3.10 || command -v python3)
  if ! "$PY3" -m venv --system-site-packages "$ROOT/venv"; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) || dnf install -y -q python3-pip
    "$PY3" -m venv --system-site-packages "$ROOT/venv" || exit 1
  fi
  "$ROOT/venv/bin/pip" install -q @PIP@ || exit 1
  PYTHON="$ROOT/venv/bin/python"
fi

cat > "$ROOT/s3.py" <<'PYEOF'
import sys
from pathlib import Path
import boto3
s3 = boto3.client("s3")
bucket, op, args = @BUCKET@, sys.argv[1], sys.argv[2:]
extra = @SSE_ARGS@
if op == "get":  # KEY DEST [KEY DEST ...]
    for k, dest in zip(args[::2], args[1::2]):
        s3.download_file(bucket, k, dest)
elif op == "put":
    s3.upload_file(args[0], bucket, args[1], ExtraArgs=extra)
elif op == "result":  # BATCH INDEX RC RUNDIR: offline store (one tarball: empty dirs matter) and log, then the exit marker
    import io, tarfile
    key, rundir = f"{args[0]}/results/{args[1]}", Path(args[3])
    if (rundir / "offline").is_dir():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(str(rundir / "offline"), arcname=".")
        s3.put_object(Bucket=bucket, Key=f"{key}/offline.tar.gz", Body=buf.getvalue(), **extra)
    if (rundir / "output.log").is_file():
        s3.upload_file(str(rundir / "output.log"), bucket, f"{key}/output.log", ExtraArgs=extra)
    s3.put_object(Bucket=bucket, Key=f"{key}/exit-{args[2]}", Body=args[2].encode(), **extra)
elif op == "skip":  # exit 0 when run args[1] of batch args[0] has a result or was cancelled
    names = {o["Key"].rsplit("/", 1)[-1] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{args[0]}/results/{args[1]}/").get("Contents", [])}
    sys.exit(0 if any(n == "cancel" or n.startswith("exit-") for n in names) else 1)
PYEOF

spot_watch() {
  while sleep "${REPRO_EC2_SPOT_POLL_S:-5}"; do
    tok=$(curl -sf -m 2 -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || continue
    if curl -sf -m 2 -H "X-aws-ec2-metadata-token: $tok" "$IMDS/latest/meta-data/spot/instance-action" > "$ROOT/spot-action.json"; then
      echo "repro: spot interruption notice: $(cat "$ROOT/spot-action.json")"
      "$PYTHON" "$ROOT/s3.py" put "$ROOT/spot-action.json" "$BATCH/slots/$SLOT/interrupted-$ATTEMPT.json"
      return
    fi
  done
}
if [ "$SPOT" = 1 ]; then spot_watch & WATCH_PID=$!; fi

mkdir -p "$ROOT/project" "$ROOT/runtime"
"$PYTHON" "$ROOT/s3.py" get "$BATCH/project.tar.gz" "$ROOT/project.tar.gz" "$BATCH/runtime.tar.gz" "$ROOT/runtime.tar.gz" \
  "$BATCH/record.json" "$ROOT/record.json" || exit 1
tar -xzf "$ROOT/project.tar.gz" -C "$ROOT/project" && tar -xzf "$ROOT/runtime.tar.gz" -C "$ROOT/runtime" || exit 1

run_one() {  # INDEX RUN_ID: the record's worker paths are relative to $ROOT (runs/<i>, project/)
  local i=$1 rid=$2
  if "$PYTHON" "$ROOT/s3.py" skip "$BATCH" "$i"; then echo "repro: run $i already has a result or was cancelled"; return; fi
  local d="$ROOT/runs/$i"; rm -rf "$d"; mkdir -p "$d"
  echo "repro: run $i ($rid) starting $(date -u +%FT%TZ)"
  (cd "$ROOT" && exec env PYTHONPATH="$ROOT/runtime${PYTHONPATH:+:$PYTHONPATH}" PATH="$(dirname "$PYTHON"):$PATH" \
     "$PYTHON" -m repro_mlflow.runtime "$ROOT/record.json" "$i") > "$d/output.log" 2>&1 < /dev/null
  local rc=$?
  echo "repro: run $i ended with exit code $rc"
  "$PYTHON" "$ROOT/s3.py" result "$BATCH" "$i" "$rc" "$d"
}

@RUNS@
echo "repro: slot $SLOT done $(date -u +%FT%TZ)"
"""


@dataclass
class SlotRun:
    """One run in an instance's script (its command and environment are in the batch record)."""

    index: int
    run_id: str


def render(*, bucket: str, batch_key: str, region: str, slot: int, attempt: int, runs: list[SlotRun],
           time_limit_minutes: float, spot: bool, python: str | None, pip: list[str],
           sse: str, kms_key_id: str | None) -> str:
    """The user-data script of one instance (slot) of a batch."""
    sse_args = {"ServerSideEncryption": sse, **({"SSEKMSKeyId": kms_key_id} if kms_key_id else {})}
    lines = []
    for r in runs:
        lines.append(" ".join(["run_one", str(r.index), shlex.quote(r.run_id)]))
    values = {
        "@BATCH_KEY@": shlex.quote(batch_key),
        "@BUCKET@": shlex.quote(bucket),
        "@SLOT@": str(int(slot)),
        "@ATTEMPT@": str(int(attempt)),
        "@SPOT@": "1" if spot else "0",
        "@PYTHON@": shlex.quote(python or ""),
        "@REGION@": shlex.quote(region),
        "@LIMIT_MIN@": str(max(1, int(-(-time_limit_minutes // 1)))),
        "@PIP@": " ".join(shlex.quote(p) for p in pip),
        "@RUNS@": "\n".join(lines),
    }
    script = _TEMPLATE
    # Python literals inside the heredoc (quoted heredoc: no shell expansion there).
    script = script.replace('bucket, op, args = @BUCKET@', f"bucket, op, args = {bucket!r}")
    script = script.replace("@SSE_ARGS@", repr(sse_args))
    for k, v in values.items():
        script = script.replace(k, v)
    return script
