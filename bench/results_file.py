"""Where a bench puts its result in its results file, so that no earlier result is lost."""

from __future__ import annotations

from collections.abc import Callable


def place(whole: dict, key: str | None, res: dict, summary: Callable[[dict], dict] | None = None) -> dict:
    """`whole` (the results file's data) with `res` at `key` (None: the top level, beside the `at_*` entries
    of other sizes). The result it replaces goes first in that place's `earlier_runs` (as `summary` sums
    it up, else whole), and the older ones stay after it."""
    old = whole if key is None else whole.get(key, {})
    sizes = {k: v for k, v in whole.items() if k.startswith("at_")}
    earlier = list(old.get("earlier_runs", []))
    body = {k: v for k, v in old.items() if k != "earlier_runs" and not k.startswith("at_")}
    if body:
        earlier.insert(0, summary(body) if summary else body)
    new = {**res, "earlier_runs": earlier} if earlier else dict(res)
    return {**new, **sizes} if key is None else {**whole, key: new}
