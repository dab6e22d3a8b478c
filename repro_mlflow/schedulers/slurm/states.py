"""Slurm job states -> MLflow run states, and parsing of `squeue` / `sacct` output.

| Slurm state                                          | run state                          |
| ---------------------------------------------------- | ---------------------------------- |
| PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD, ...     | SCHEDULED                          |
| RUNNING, COMPLETING, SUSPENDED, STAGE_OUT, SIGNALING | RUNNING                            |
| COMPLETED                                            | FINISHED                           |
| FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, DEADLINE | FAILED, reason = the state |
| CANCELLED                                            | KILLED                             |
| PREEMPTED                                            | SCHEDULED (requeue: true) or FAILED |
"""

from __future__ import annotations

from ..protocol import FAILED, FINISHED, KILLED, RUNNING, SCHEDULED, JobState

_SCHEDULED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
_RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED", "RESIZING"}
_FAILED_REASONS = {
    "FAILED": "FAILED: the job exited with a non-zero code",
    "TIMEOUT": "TIMEOUT: the job reached its time limit",
    "OUT_OF_MEMORY": "OUT_OF_MEMORY: the job ran out of memory",
    "NODE_FAIL": "NODE_FAIL: the job's node failed",
    "BOOT_FAIL": "BOOT_FAIL: the job's node failed to boot",
    "DEADLINE": "DEADLINE: the job missed its deadline",
    "SPECIAL_EXIT": "SPECIAL_EXIT: the job ended in a special state",
    "REVOKED": "REVOKED: the job was revoked (federation)",
}


def map_state(slurm_state: str, reason: str | None = None, restarts: int | None = None,
              requeue: bool = False) -> JobState:
    """The run state for one Slurm job state (`squeue %T` / sacct State; `CANCELLED by 0` is fine)."""
    state = slurm_state.split()[0].rstrip("+").upper() if slurm_state else ""
    attempt = None if restarts is None else restarts + 1
    why = reason if reason and reason not in ("None", "(null)") else None
    if state in _SCHEDULED:
        return JobState(SCHEDULED, why, attempt)
    if state in _RUNNING:
        return JobState(RUNNING, None, attempt)
    if state == "COMPLETED":
        return JobState(FINISHED, None, attempt)
    if state == "CANCELLED":
        return JobState(KILLED, "CANCELLED: the Slurm job was cancelled", attempt)
    if state == "PREEMPTED":
        if requeue:
            return JobState(SCHEDULED, "PREEMPTED: requeued", attempt)
        return JobState(FAILED, "PREEMPTED: the job was preempted (requeue is off)", attempt)
    if state in _FAILED_REASONS:
        text = _FAILED_REASONS[state]
        return JobState(FAILED, f"{text} ({why})" if why and why != "NonZeroExitCode" else text, attempt)
    return JobState(FAILED, f"unknown Slurm state {slurm_state}", attempt)


SQUEUE_FORMAT = "JobArrayID:64,State:24,RestartCnt:8,Reason:200"


def parse_squeue(text: str, requeue: bool = False) -> dict[str, JobState]:
    """`squeue --array -h -O JobArrayID,State,RestartCnt,Reason` output -> {`<jobid>_<index>`: JobState}."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 2:
            continue
        jid, state = parts[0], parts[1]
        restarts = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        reason = parts[3].strip() if len(parts) > 3 else None
        out[jid] = map_state(state, reason, restarts, requeue)
    return out


def parse_sacct(text: str, requeue: bool = False) -> dict[str, JobState]:
    """`sacct -X -n -P -o JobID,State,ExitCode` output -> {job id: JobState}."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 2:
            continue
        jid, state = parts[0], parts[1]
        st = map_state(state, None, None, requeue)
        if st.state == FAILED and len(parts) > 2 and parts[2] and state.startswith("FAILED"):
            st.reason = f"FAILED: exit code {parts[2].split(':')[0]}"
        out[jid] = st
    return out
