"""The status mapping, read by the real htcondor2.JobEventLog from real event logs (tests/fixtures/htcondor)."""

from __future__ import annotations

from pathlib import Path

import htcondor2

from repro_mlflow.schedulers.htcondor.events import HELD, ProcState, apply_event, hold_text, last_cluster, read_log

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "htcondor"
TINY = LOGS / "lsst_ctrl_bps_htcondor_tiny_problems.dag.nodes.log"
GROUP = LOGS / "lsst_ctrl_bps_htcondor_group_failed_1.dag.nodes.log"
RUNNING_LOG = LOGS / "lsst_ctrl_bps_htcondor_noop_running_1.dag.nodes.log"
OLD = LOGS / "htcondor_condor_tests_job_dagman_gt1957.testlog"
SYNTHETIC = LOGS / "htcondor_condor_utils_test_condor.log"


def _codes(path: Path, code: str) -> set[tuple[int, int]]:
    """(cluster, proc) of every event `code` in the log, read from its text (independent of the parser)."""
    out = set()
    for line in path.read_text().splitlines():
        if line.startswith(code + " ("):
            c, p, _ = line.split("(")[1].split(")")[0].split(".")
            out.add((int(c), int(p)))
    return out


def test_terminated_exit_0_is_finished_exit_1_failed_aborted_killed():
    st = read_log(TINY)
    assert st[(9230, 0)].state == "FINISHED" and st[(9230, 0)].reason is None
    assert st[(9231, 0)].state == "FAILED" and st[(9231, 0)].reason == "exit code 1"
    assert st[(9229, 0)].state == "KILLED"
    assert st[(9229, 0)].reason == "DAG Abort: DAG is exiting and writing rescue file. (by user testuser)"
    assert {k for k, s in st.items() if s.state == "FINISHED"} == {(9230, 0), (9232, 0), (9233, 0), (9234, 0)}


def test_larger_log_counts_agree_with_its_text():
    st = read_log(GROUP)
    assert set(st) == _codes(GROUP, "000")
    failed = {k for k, s in st.items() if s.state == "FAILED"}
    killed = {k for k, s in st.items() if s.state == "KILLED"}
    assert killed == _codes(GROUP, "009")
    text = GROUP.read_text()
    assert len(failed) == text.count("(return value 1)") - text.count("POST Script terminated.\n\t(1) Normal termination (return value 1)")
    assert all(s.state in ("FINISHED", "FAILED", "KILLED") for s in st.values())


def test_incomplete_log_idle_and_executing():
    st = read_log(RUNNING_LOG)
    executing, terminated = _codes(RUNNING_LOG, "001"), _codes(RUNNING_LOG, "005")
    assert {k for k, s in st.items() if s.state == "RUNNING"} == executing - terminated
    assert {k for k, s in st.items() if s.state == "SCHEDULED"} == set(st) - executing
    assert {k for k, s in st.items() if s.state == "FINISHED"} == terminated
    assert all(s.attempt == 1 for s in st.values())


def test_evicted_goes_back_to_scheduled_with_the_next_attempt():
    # the real log: 9229.0 executes, is evicted, then aborted; fold it up to the eviction
    st = ProcState()
    log = htcondor2.JobEventLog(str(TINY))
    seen = []
    for ev in log.events(stop_after=0):
        if (ev.cluster, ev.proc) != (9229, 0):
            continue
        apply_event(st, ev)
        seen.append((ev.type, st.state, st.attempt))
        if ev.type == htcondor2.JobEventType.JOB_EVICTED:
            break
    log.close()
    assert seen == [
        (htcondor2.JobEventType.SUBMIT, "SCHEDULED", 1),
        (htcondor2.JobEventType.EXECUTE, "RUNNING", 1),
        (htcondor2.JobEventType.JOB_EVICTED, "SCHEDULED", 2),
    ]


def test_abnormal_termination_is_failed_and_a_late_abort_changes_nothing():
    st = read_log(OLD)
    assert st[(180158, 0)].state == "FAILED" and st[(180158, 0)].reason == "killed by signal 11"
    assert st[(180159, 0)].state == "FINISHED"


def test_held_then_released_from_htcondors_own_test_log():
    # HTCondor's synthetic event-writer log (all events of one pseudo-job): walk it to the first hold,
    # then to the release that follows
    st, trail = ProcState(state="RUNNING", starts=1), []
    log = htcondor2.JobEventLog(str(SYNTHETIC))
    for ev in log.events(stop_after=0):
        if ev.type in (htcondor2.JobEventType.JOB_HELD, htcondor2.JobEventType.JOB_RELEASED):
            apply_event(st, ev)
            trail.append(st.state)
            if len(trail) == 2 and trail[-1] == "SCHEDULED":
                break
            if trail[-1] == HELD:
                trail = [HELD]
    log.close()
    assert trail == [HELD, "SCHEDULED"]
    assert st.holds >= 1 and st.hold_code == 0
    assert st.attempt == 2  # it had run: the release starts a new attempt


def test_synthetic_log_parses_and_counts_every_hold():
    counted = ProcState()
    log = htcondor2.JobEventLog(str(SYNTHETIC))
    holds = 0
    for ev in log.events(stop_after=0):
        if ev.type == htcondor2.JobEventType.JOB_HELD:
            holds += 1
            counted.state = "RUNNING"  # keep the pseudo-job live so every hold is folded
            apply_event(counted, ev)
    log.close()
    assert holds == SYNTHETIC.read_text().count("Job was held.") == counted.holds


def test_hold_reason_text():
    st = ProcState(state=HELD, hold_reason="Error from slot1: memory limit", hold_code=34, hold_subcode=0)
    assert hold_text(st) == "held (HoldReasonCode 34, subcode 0): Error from slot1: memory limit"


def test_missing_log_is_empty_and_cluster_filter():
    assert read_log(LOGS / "nope.log") == {}
    assert set(read_log(TINY, cluster=9231)) == {(9231, 0)}
    assert last_cluster(TINY) == 9234


# ---- real logs of the 25.14 personal pool (tests/services/htcondor.py; SOURCES.md) -----------------------

POOL = {name: LOGS / f"pool25_{name}.log" for name in (
    "batch3_finished", "max_retries_exit3", "missing_input_held_released_held_removed",
    "condor_hold_condor_rm_remove", "vacate_then_finished")}


def _prefix(path: Path, n_events: int) -> dict:
    """The fold of the first `n_events` events only (the log as `repro sync` saw it at that moment)."""
    st: dict = {}
    log = htcondor2.JobEventLog(str(path))
    for i, event in enumerate(log.events(stop_after=0)):
        if i == n_events:
            break
        apply_event(st.setdefault((event.cluster, event.proc), ProcState()), event)
    log.close()
    return st


def test_events_pool25_batch_of_three_one_cluster_all_finished_transfer_events_ignored():
    st = read_log(POOL["batch3_finished"])
    assert len({c for c, _ in st}) == 1 and sorted(p for _, p in st) == [0, 1, 2]
    assert all((s.state, s.attempt, s.return_value) == ("FINISHED", 1, 0) for s in st.values())
    assert POOL["batch3_finished"].read_text().count("Finished transferring output files") == 3


def test_events_pool25_max_retries_requeue_is_one_more_attempt_then_failed():
    path = POOL["max_retries_exit3"]
    text = path.read_text().split("\n...\n")
    requeue = next(i for i, e in enumerate(text) if "Job terminated and was requeued" in e)
    [mid] = _prefix(path, requeue + 1).values()
    assert (mid.state, mid.attempt, mid.reason) == ("SCHEDULED", 2, "exit code 3, requeued")
    [end] = read_log(path).values()
    assert (end.state, end.reason, end.attempt) == ("FAILED", "exit code 3", 2)


def test_events_pool25_missing_input_hold_reason_code_and_release_then_removed_failed():
    path = POOL["missing_input_held_released_held_removed"]
    events = path.read_text().split("\n...\n")
    held = next(i for i, e in enumerate(events) if e.lstrip().startswith("012"))
    # 25.14 before the hold: 040 input transfer, 021 the starter's error, 004 evicted (Code 13): not an attempt
    assert [e.lstrip()[:3] for e in events[:held]] == ["000", "040", "040", "040", "021", "004"]
    [first] = _prefix(path, held + 1).values()
    assert (first.state, first.hold_code, first.hold_subcode, first.holds) == (HELD, 13, 2, 1)
    assert first.hold_reason.startswith("Transfer input files failure at access point vm while sending files")
    assert first.hold_reason.endswith("project.tar.gz: (errno 2) No such file or directory")
    [end] = read_log(path).values()
    assert end.state == "FAILED" and end.holds == 2 and end.starts == 0
    assert end.reason.startswith("held (HoldReasonCode 13, subcode 2): Transfer input files failure")


def test_events_pool25_condor_hold_condor_rm_and_jobaction_remove():
    st = read_log(POOL["condor_hold_condor_rm_remove"])
    held, rm, remove = (st[k] for k in sorted(st))
    assert (held.state, held.reason) == ("FAILED", "held (HoldReasonCode 1, subcode 0): via condor_hold (by user reprojob)")
    assert (rm.state, rm.reason) == ("KILLED", "via condor_rm (by user reprojob)")
    assert (remove.state, remove.reason) == ("KILLED", "removed")  # the bindings' Remove writes no reason


def test_events_pool25_vacate_is_an_eviction_then_the_second_attempt_finishes():
    path = POOL["vacate_then_finished"]
    text = path.read_text().split("\n...\n")
    evicted = next(i for i, e in enumerate(text) if e.lstrip().startswith("004"))
    [mid] = _prefix(path, evicted + 1).values()
    assert (mid.state, mid.attempt, mid.reason) == ("SCHEDULED", 2, "evicted: Job vacated by schedd")
    [end] = read_log(path).values()
    assert (end.state, end.attempt, end.starts) == ("FINISHED", 2, 2)
