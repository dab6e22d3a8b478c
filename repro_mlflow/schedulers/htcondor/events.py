"""Job states from an HTCondor job event log, read with the real `htcondor2.JobEventLog`.

One log per batch (one cluster), so one read gives every proc's state: the schedd is never polled
job by job. The fold per proc, in log order:

    000 submit, 013 released                      -> SCHEDULED
    001 execute, 011 unsuspended, 010 suspended   -> RUNNING   (attempt = number of 001 events)
    004 evicted, 007 shadow exception,
    023 reconnect failed                          -> SCHEDULED, the next attempt pending
    005 terminated: return value 0                -> FINISHED (terminal states are final)
    005 terminated: other value or a signal       -> FAILED  ("exit code N" / "killed by signal N")
    012 held                                      -> HELD    (HoldReason, HoldReasonCode, HoldReasonSubCode)
    009 aborted                                   -> KILLED  (its Reason: condor_rm's "via condor_rm (by user u)";
                                                     JobAction.Remove writes none); FAILED with the hold reason
                                                     when the job was held at the time
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..protocol import FAILED, FINISHED, KILLED, RUNNING, SCHEDULED

HELD = "HELD"  # not an MLflow state: the scheduler turns it into FAILED or a release


@dataclass
class ProcState:
    """What the event log says about one proc of a cluster."""

    state: str = SCHEDULED
    starts: int = 0  # 001 execute events
    requeued: bool = False  # evicted / requeued and not started again yet
    reason: str | None = None
    holds: int = 0  # 012 held events
    hold_reason: str | None = None
    hold_code: int | None = None
    hold_subcode: int | None = None
    return_value: int | None = None

    @property
    def attempt(self) -> int:
        """1 for the first try; +1 for every eviction or requeue (the pending try counts once it is due)."""
        return max(1, self.starts + (1 if self.requeued else 0))


def import_htcondor():
    """Import `htcondor2`; on a machine with no HTCondor configuration, point the bindings at /dev/null first."""
    if not _has_config():
        os.environ["CONDOR_CONFIG"] = "/dev/null"
    try:
        import htcondor2
    except ImportError:
        from ...errors import ReproError

        raise ReproError("the repro-htcondor backend needs the htcondor package: pip install 'repro-mlflow[htcondor]'") from None
    return htcondor2


def _has_config() -> bool:
    """True when this machine has an HTCondor configuration (an access point); else the bindings get /dev/null."""
    return bool(os.environ.get("CONDOR_CONFIG")) or Path("/etc/condor/condor_config").exists() \
        or Path(os.path.expanduser("~/.condor/condor_config")).exists()


def apply_event(st: ProcState, event) -> None:
    """Fold one `htcondor2.JobEvent` into `st`."""
    T = import_htcondor().JobEventType
    t = event.type
    if st.state in (FINISHED, FAILED, KILLED):
        return  # a terminal event is final (a late 009 after a 005, as DAGMan writes, changes nothing)
    if t == T.SUBMIT:
        st.state = SCHEDULED
    elif t == T.EXECUTE:
        st.state, st.starts, st.requeued, st.reason = RUNNING, st.starts + 1, False, None
    elif t in (T.JOB_SUSPENDED, T.JOB_UNSUSPENDED):
        st.state = RUNNING
    elif t in (T.JOB_EVICTED, T.SHADOW_EXCEPTION, T.JOB_RECONNECT_FAILED):
        if st.state == HELD:
            return
        st.state, st.requeued = SCHEDULED, st.starts > 0
        if t == T.JOB_EVICTED and event.get("TerminatedAndRequeued"):
            rv = event.get("ReturnValue")
            st.reason = f"exit code {rv}, requeued" if rv is not None else "terminated and requeued"
        elif t == T.SHADOW_EXCEPTION:
            st.reason = f"shadow exception: {event.get('Message', '')}".strip()
        else:  # 25.x: "Reason: Job vacated by schedd" (condor_vacate_job), a preemption, ...
            st.reason = f"evicted: {event['Reason']}" if event.get("Reason") else "evicted"
    elif t == T.JOB_TERMINATED:
        if event.get("TerminatedNormally", True):
            rv = int(event.get("ReturnValue", 0))
            st.return_value = rv
            st.state, st.reason = (FINISHED, None) if rv == 0 else (FAILED, f"exit code {rv}")
        else:
            st.state, st.reason = FAILED, f"killed by signal {event.get('TerminatedBySignal', '?')}"
        st.requeued = False
    elif t == T.JOB_HELD:
        st.state, st.holds = HELD, st.holds + 1
        st.hold_reason = event.get("HoldReason") or None
        st.hold_code = event.get("HoldReasonCode")
        st.hold_subcode = event.get("HoldReasonSubCode")
    elif t == T.JOB_RELEASED:
        if st.state == HELD:
            st.state, st.requeued = SCHEDULED, st.starts > 0
    elif t == T.JOB_ABORTED:
        if st.state == HELD:
            st.state, st.reason = FAILED, hold_text(st)
        else:
            st.state, st.reason = KILLED, event.get("Reason") or "removed"
        st.requeued = False


def hold_text(st: ProcState) -> str:
    """`held (HoldReasonCode c, subcode s): <HoldReason>`: the code first, since a long reason is cut in the tag."""
    reason = st.hold_reason or "no reason given"
    code = f" (HoldReasonCode {st.hold_code}, subcode {st.hold_subcode})" if st.hold_code is not None else ""
    return f"held{code}: {reason}"


def read_log(path: Path, cluster: int | None = None) -> dict[tuple[int, int], ProcState]:
    """Every (cluster, proc) in the log at `path` with its folded state; only `cluster` if given.

    A missing log reads as empty (nothing has been written yet).
    """
    if not Path(path).is_file():
        return {}
    htcondor2 = import_htcondor()
    states: dict[tuple[int, int], ProcState] = {}
    log = htcondor2.JobEventLog(str(path))
    try:
        for event in log.events(stop_after=0):
            if cluster is not None and event.cluster != cluster:
                continue
            key = (event.cluster, event.proc)
            apply_event(states.setdefault(key, ProcState()), event)
    finally:
        log.close()
    return states


def last_cluster(path: Path) -> int | None:
    """The cluster of the last submit event in the log (a dry run submitted by hand), or None."""
    if not Path(path).is_file():
        return None
    htcondor2 = import_htcondor()
    found = None
    log = htcondor2.JobEventLog(str(path))
    try:
        for event in log.events(stop_after=0):
            if event.type == htcondor2.JobEventType.SUBMIT:
                found = event.cluster
    finally:
        log.close()
    return found
