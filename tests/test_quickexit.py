"""A program that ends without its modules' teardown still ends as `sys.exit` would (repro_mlflow/quickexit.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import sys, tempfile
from repro_mlflow.quickexit import end_program
tmp = tempfile.TemporaryDirectory()  # removed by its exit handler, as at a normal exit
print(tmp.name)
sys.stdout.write("no newline at the end")  # buffered: flushed before the process ends
end_program({code!r})
"""


@pytest.mark.parametrize("code,status,stderr", [(0, 0, ""), (3, 3, ""), (None, 0, ""), ("prog: error: bad", 1, "prog: error: bad\n")])
def test_the_exit_status_output_and_exit_handlers_are_those_of_sys_exit(code, status, stderr, tmp_path):
    p = subprocess.run([sys.executable, "-c", PROGRAM.format(code=code)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == status
    assert p.stderr == stderr
    tmpdir, rest = p.stdout.split("\n", 1)
    assert rest == "no newline at the end"
    assert not Path(tmpdir).exists()
