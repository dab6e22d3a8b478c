"""Ending a command-line program without the interpreter's teardown of every module it imported.

That teardown takes 0.4 s on this machine once MLflow or pandas is imported: a tenth of a whole
`repro-sweep` or `repro analyze`. The program's end is otherwise what `sys.exit` gives: the message of a
string code on stderr and exit status 1, the exit handlers run (log handlers flushed, temporary
directories removed), the standard streams flushed.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn

HEAVY = ("mlflow", "pandas")  # imported: the teardown is worth skipping


def heavy() -> bool:
    """Whether this process imported what makes its teardown slow."""
    return any(m in sys.modules for m in HEAVY)


def end_program(code: int | str | None) -> NoReturn:
    """Exit with `code` as `sys.exit(code)` would, less the teardown of the modules."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    getattr(atexit, "_run_exitfuncs", lambda: None)()  # CPython's own exit handlers, as at a normal exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing more can be said
            pass
    os._exit(code or 0)
