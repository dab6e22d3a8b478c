"""A multirun's command line -> each job's overrides: the cartesian product of its sweeps, as Hydra's basic sweeper.

Two rules of repro's own on the command line (Hydra would silently take the last value, or plan
nothing): a key given twice with different values, and a sweep with no values, are errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from hydra.core.override_parser.types import Override

from ..errors import ReproError


def check(arguments: Sequence[Override]) -> None:
    """Raise ReproError (one line) for a key given twice with different values or a sweep with no values."""
    seen: dict[str, str] = {}
    for o in arguments:
        if o.is_delete():
            continue
        if o.is_sweep_override() and o.is_discrete_sweep() and not list(o.sweep_string_iterator()):
            raise ReproError(f"empty sweep: '{o.input_line}' has no values")
        key = o.key_or_group
        if key in seen and seen[key] != o.input_line:
            raise ReproError(f"conflicting overrides: '{seen[key]}' and '{o.input_line}'")
        seen[key] = str(o.input_line)


def jobs(overrides: Sequence[Override]) -> list[list[str]]:
    """Every job's overrides: one list per point of the product of the sweeps (a later key replaces an earlier one)."""
    per_key: dict[str, list[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ReproError(f"the repro sweeper does not support the sweep '{o.input_line}' "
                                 "(comma lists, range(...) and choice(...) only)")
            per_key[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            per_key[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*per_key.values())]


def batches(all_jobs: list[list[str]], max_batch_size: int | None) -> Iterator[list[list[str]]]:
    """The jobs in launches of at most max_batch_size (None or -1: one launch)."""
    if not all_jobs:
        raise ReproError("empty sweep: no runs to plan")
    n = len(all_jobs) if max_batch_size in (None, -1) else int(max_batch_size)  # type: ignore[arg-type]
    if n <= 0:
        raise ReproError(f"hydra.sweeper.max_batch_size must be positive, got {max_batch_size}")
    for i in range(0, len(all_jobs), n):
        yield all_jobs[i:i + n]
