"""CPU affinity and thread pools for the whole process, read back from the OS and each pool.

`os.sched_setaffinity(0, …)` binds the calling thread only; a thread started before it (NumPy's
BLAS pool, a framework's workers) keeps every CPU. `pin` therefore binds every thread the process
has (`/proc/self/task/<tid>`), and `limit_pools` sizes the BLAS/OpenMP pools loaded in the process
(threadpoolctl). `in_force` and `pools` read back what holds, for the `repro.affinity.*` tags.

A CPU slot (`REPRO_CPU_SLOT=k/m`, set by repro-local for the runs of a `parallel: m` batch) gives
run k of m CPUs the other slots do not get, while the m slots fit on the machine's CPUs.
Imports no framework and nothing of repro_mlflow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SLOT_VAR", "Slot", "parse_slot", "choose", "tasks", "pin", "in_force", "limit_pools", "pools",
           "pools_tag", "cpu_list"]

SLOT_VAR = "REPRO_CPU_SLOT"
TASKS = "/proc/self/task"


@dataclass(frozen=True)
class Slot:
    """Run `index` (from 0) of `count` runs that share this machine at the same time."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_slot(value: str | None) -> Slot | None:
    """`k/m` (0 <= k < m) as a Slot; None for an unset or empty value. ValueError (one line) otherwise."""
    if not value:
        return None
    k, sep, m = value.partition("/")
    if not (sep and k.strip().isdigit() and m.strip().isdigit() and int(k) < int(m)):
        raise ValueError(f"{SLOT_VAR} must be k/m with 0 <= k < m, got {value!r}")
    return Slot(int(k), int(m))


def choose(allowed: Iterable[int], threads: int, slot: Slot | None) -> tuple[list[int], bool]:
    """The CPUs of `allowed` for `threads` CPUs in `slot`, and whether other slots get some of them too.

    Slot k takes the k-th run of `threads` CPUs; when the slots need more CPUs than there are, the
    runs wrap around (and share). threads=0: every allowed CPU (shared whenever there are other slots).
    """
    cpus = sorted(allowed)
    count = slot.count if slot else 1
    if threads <= 0:
        return cpus, count > 1
    n = min(threads, len(cpus))
    start = slot.index * n if slot else 0
    return sorted(cpus[(start + i) % len(cpus)] for i in range(n)), count * n > len(cpus)


def tasks() -> list[int]:
    """The ids of the threads this process has now."""
    try:
        return sorted(int(t) for t in os.listdir(TASKS))
    except OSError:  # no /proc: the calling thread is all we can see
        return [0]


def pin(cpus: Iterable[int]) -> None:
    """Bind every thread of the process to `cpus` (threads started meanwhile included: until no new one shows)."""
    cpus = set(cpus)
    done: set[int] = set()
    for _ in range(10):
        todo = [t for t in tasks() if t not in done]
        if not todo:
            return
        for tid in todo:
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # the thread ended meanwhile
                pass
            done.add(tid)


def in_force() -> list[int]:
    """The CPUs any thread of this process may run on (the union over its threads), read back."""
    out: set[int] = set()
    for tid in tasks():
        try:
            out |= os.sched_getaffinity(tid)
        except ProcessLookupError:
            pass
    return sorted(out)


def limit_pools(threads: int) -> None:
    """Size every BLAS/OpenMP pool loaded in the process to `threads` (threadpoolctl; persists)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def pools() -> list[tuple[str, int]]:
    """(library, threads) of each BLAS/OpenMP pool loaded in the process, read back (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    return sorted((str(p.get("prefix") or p.get("internal_api")), int(p["num_threads"])) for p in threadpool_info())


def pools_tag(found: Iterable[tuple[str, int]]) -> str:
    """`libgomp=1,libscipy_openblas=1`: each pool once per thread count; `none` when no pool is loaded."""
    return ",".join(sorted({f"{name}={n}" for name, n in found})) or "none"


def cpu_list(cpus: Iterable[int]) -> str:
    """Compact CPU list as Linux writes it: 0-3,8."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)
