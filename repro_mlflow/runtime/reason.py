"""Failure reasons that explain themselves: `exit code 1: ValueError: epochs must be positive`.

`explain` adds to a failed command's reason the last error line of its output: the exception line of
the last Python traceback, else the last line that starts as an error does ("error: ...", "prog: error:
...", "FATAL ...", "SomeError: ..."), else the last line, log noise left out (glog INFO/WARNING lines
such as TensorFlow's "I0000 ... oneDNN custom operations are on", and the runtime's own "repro runtime:" notes);
`group` counts failures by reason for `repro status` and `repro-sweep`. Stdlib only (runs on the worker).
"""

from __future__ import annotations

import re
from pathlib import Path

TAIL_BYTES = 64 * 1024
MAX_LINE = 200
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# a line that starts as an error does, optionally after "prog:" prefixes
_ERRORISH = re.compile(r"^(?:[\w.\-/\[\] ]{1,60}:\s*){0,3}(?:error|fatal|\w*Error|\w*Exception)\b", re.IGNORECASE)
# glog INFO/WARNING lines (TensorFlow, XLA, absl), absl's preamble and the repro runtime's own notes
# (they share the output log): never the reason
_NOISE = re.compile(r"^(?:[IW]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl|repro runtime: )")
_TRACEBACK = "Traceback (most recent call last):"


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = _ANSI.sub("", raw.rsplit("\r", 1)[-1]).rstrip()  # a progress bar keeps its last state
        if line.strip() and not _NOISE.match(line):
            out.append(line)
    return out


def last_error_line(text: str) -> str | None:
    """The line of `text` that best says why the command failed, or None for no output."""
    lines = _lines(text)
    if not lines:
        return None
    tb = max((i for i, x in enumerate(lines) if x.strip() == _TRACEBACK), default=None)
    if tb is not None:
        # the exception line: the last unindented line after the traceback header
        after = [x for x in lines[tb + 1:] if not x.startswith((" ", "\t"))]
        if after:
            return after[-1].strip()[:MAX_LINE]
    errorish = [x for x in lines if _ERRORISH.match(x.strip())]
    return (errorish[-1] if errorish else lines[-1]).strip()[:MAX_LINE]


def read_tail(path: str | Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a file as text ('' if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def explain(reason: str | None, log_file: str | Path | None) -> str | None:
    """`reason` ("exit code 2") with the last error line of the command's output appended, when there is one."""
    if not reason or not log_file:
        return reason
    line = last_error_line(read_tail(log_file))
    return f"{reason}: {line}" if line else reason


def group(failures: list[tuple[str, str | None]]) -> list[tuple[int, str, str]]:
    """(run id, reason) pairs → (count, reason, one run id), most frequent reason first."""
    by: dict[str, list[str]] = {}
    for run_id, reason in failures:
        by.setdefault(reason or "no reason recorded", []).append(run_id)
    return sorted(((len(ids), r, ids[0]) for r, ids in by.items()), key=lambda t: (-t[0], t[1]))
