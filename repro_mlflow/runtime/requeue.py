"""Was the SIGTERM just received a requeue? (stdlib only)

A scheduler that requeues a job (Slurm: `scontrol requeue`, a preemption or a node failure with
`--requeue`) stops the running attempt with SIGTERM, as a cancel does. The runtime asks only when
the batch allows requeue (the batch record's `worker.requeue`); Slurm counts restarts: if the job's
`RestartCnt` is now above the `SLURM_RESTART_COUNT` this attempt started with, Slurm is starting
it again, and the run waits for its next attempt (SCHEDULED) instead of ending KILLED.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping


def slurm_requeued(environ: Mapping[str, str], timeout: float = 5.0) -> bool:
    """True if this Slurm job's restart count went up since this attempt started (it is being requeued)."""
    job = environ.get("SLURM_JOB_ID")
    if not job:
        return False
    try:
        started = int(environ.get("SLURM_RESTART_COUNT") or 0)
        p = subprocess.run(["squeue", "-h", "-j", job, "-O", "RestartCnt"], capture_output=True, text=True,
                           timeout=timeout)
        return p.returncode == 0 and int(p.stdout.split()[0]) > started
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return False  # cannot tell: a kill, as before


def requeued(environ: Mapping[str, str]) -> bool:
    """Whether the scheduler running this job is requeueing it (Slurm today; False elsewhere)."""
    return slurm_requeued(environ)


__all__ = ["requeued", "slurm_requeued"]
