"""How a sweep's errors reach the user: one line, in Hydra's (or OmegaConf's) own words.

Hydra prints an error over several lines (message, cause, a hint about HYDRA_FULL_ERROR). With
`HYDRA_FULL_ERROR=1`, its documented switch, Hydra raises the exception instead; `hydra_raises()`
sets it while Hydra composes so `repro-sweep` can print the exception as one line. A user who set
`HYDRA_FULL_ERROR=1` gets the full trace, as with any Hydra app; the launcher gives the runs the
user's own setting back (`restore_user_setting`) before anything is submitted.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_VAR = "HYDRA_FULL_ERROR"
_UNSET = object()
_user: object = _UNSET  # the user's HYDRA_FULL_ERROR while hydra_raises() holds it (None: not set)
_DUMPS = ("full_key:", "object_type=", "reference_type=", "Set the environment variable HYDRA_FULL_ERROR")


def _sentences(text: str) -> str:
    """A message's text as one line: its first paragraph, plus Hydra's list of available options folded in."""
    paragraphs: list[list[str]] = [[]]
    for ln in text.strip().splitlines():
        if ln.strip():
            paragraphs[-1].append(ln.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    out = " ".join(ln for ln in paragraphs[0] if not ln.startswith(_DUMPS))
    for p in paragraphs[1:]:
        if p and p[0].lower().startswith("available options"):
            options = [ln for ln in itertools.takewhile(lambda ln: not ln.endswith(":"), p[1:])]
            out += f" ({p[0].rstrip(':').lower()}: {', '.join(options)})"
    return out


def one_line(ex: BaseException) -> str:
    """The exception and its cause (Hydra wraps OmegaConf's error) as one line, without key dumps."""
    msg = _sentences(str(ex))
    cause = ex.__cause__
    if cause is not None and not isinstance(cause, (KeyboardInterrupt, SystemExit)):
        why = _sentences(str(cause))
        if why and why not in msg:
            msg = f"{msg.rstrip('.:')}: {why}" if msg else why
    return msg or type(ex).__name__


def full_error() -> bool:
    """Whether the user asked for Hydra's full trace (HYDRA_FULL_ERROR=1)."""
    user = os.environ.get(_VAR) if _user is _UNSET else _user
    return user == "1"


def restore_user_setting() -> None:
    """Give HYDRA_FULL_ERROR back its value from before `hydra_raises()` (the runs inherit the environment)."""
    global _user
    if _user is _UNSET:
        return
    if _user is None:
        os.environ.pop(_VAR, None)
    else:
        os.environ[_VAR] = str(_user)
    _user = _UNSET


@contextmanager
def hydra_raises(prog: str) -> Iterator[None]:
    """Run Hydra with HYDRA_FULL_ERROR=1; an exception from it becomes `PROG: error: <one line>`, exit 1."""
    global _user
    _user = os.environ.get(_VAR)
    os.environ[_VAR] = "1"
    try:
        yield
    except Exception as ex:  # noqa: BLE001 - whatever Hydra raises is reported on one line
        user_wants_trace = full_error()
        restore_user_setting()
        if user_wants_trace:
            raise
        print(f"{prog}: error: {one_line(ex)}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        restore_user_setting()
