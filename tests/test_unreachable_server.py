"""A tracking server that is not there: every command says so in one line, exits 1 and creates nothing.

MLflow's own client retries for about 4 minutes before it fails with a traceback; each repro command
checks the server first (repro_mlflow/reach.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], cwd: Path, uri: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=200)
    return r, time.monotonic() - t


COMMANDS = {
    "status": [str(BIN / "repro"), "status"],
    "sync": [str(BIN / "repro"), "sync"],
    "sweep": [str(BIN / "repro-sweep"), "+preset=demo", f"project_dir={ROOT}"],
    "mlflow run": [str(BIN / "mlflow"), "run", str(ROOT), "-e", "mnist_convnet", "-P", "data=bundled",
                   "--backend", "repro-local"],
}


def created(folder: Path) -> list[str]:
    # Hydra writes its own multirun.yaml before any launcher runs; that is Hydra's, not a run or a store
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name != "multirun.yaml")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_refused_server_one_line_exit_1_nothing_created(name, tmp_path):
    uri = f"http://user:s3cret@127.0.0.1:{free_port()}"
    r, seconds = run(COMMANDS[name], tmp_path, uri)
    assert r.returncode != 0
    errors = [ln for ln in (r.stderr + r.stdout).splitlines() if "cannot reach the tracking server" in ln]
    assert len(errors) == 1 and "127.0.0.1" in errors[0] and "Connection refused" in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "s3cret" not in r.stderr + r.stdout  # the password is redacted
    assert created(tmp_path) == []
    assert seconds < 120  # MLflow alone: about 250 s of retries


def test_a_server_that_never_answers_is_given_up_on_in_seconds(tmp_path):
    with socket.socket() as s:  # accepts connections (the kernel's backlog), never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        r, seconds = run(COMMANDS["status"], tmp_path, f"http://127.0.0.1:{s.getsockname()[1]}")
    assert r.returncode == 1
    assert "cannot reach the tracking server" in r.stderr and "timed out" in r.stderr
    assert seconds < 120


def test_a_server_that_answers_is_reached_with_credentials_in_the_uri():
    # urllib cannot open http://user:pw@host: the check asks the server itself, without the credentials
    import http.server
    import threading

    from repro_mlflow.reach import check_tracking_server

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check_tracking_server(f"http://user:s3cret@127.0.0.1:{server.server_address[1]}")  # no error
    finally:
        server.shutdown()
        server.server_close()
