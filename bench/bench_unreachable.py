"""How long each command takes to say the tracking server cannot be reached (issue 28 item 4; target: 15 s).

`mlflow run … --backend repro-local`, `repro-sweep`, `repro status`, `repro sync`, each against a port
nobody listens on (connection refused) and against a socket that accepts and never answers (the
health check's 5 s timeout). Recorded: seconds to exit, the exit code, and the one error line.
MLflow's own client alone retries for about 250 s.

    .venv/bin/python bench/bench_unreachable.py
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_S = 15.0

COMMANDS = {
    "mlflow run": [str(BIN / "mlflow"), "run", str(ROOT), "-e", "mnist_convnet", "-P", "data=bundled",
                   "--backend", "repro-local"],
    "repro-sweep": [str(BIN / "repro-sweep"), "+preset=demo", f"project_dir={ROOT}"],
    "repro status": [str(BIN / "repro"), "status"],
    "repro sync": [str(BIN / "repro"), "sync"],
}


def one(cmd: list[str], uri: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "REPRO_HOME": str(Path(d) / "repro")}
        t = time.monotonic()
        r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=600)
        seconds = time.monotonic() - t
    line = next((ln for ln in r.stderr.splitlines() if "cannot reach" in ln), r.stderr.strip()[-200:])
    return {"seconds": round(seconds, 2), "rc": r.returncode, "line": line}


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = s.getsockname()[1]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts (the kernel's backlog), never answers
    cases = {"refused": f"http://user:s3cret@127.0.0.1:{refused}",
             "never answers": f"http://user:s3cret@127.0.0.1:{silent.getsockname()[1]}"}
    results = {kind: {name: one(cmd, uri) for name, cmd in COMMANDS.items()} for kind, uri in cases.items()}
    silent.close()
    worst = max(r["seconds"] for by in results.values() for r in by.values())
    out = {"target_s": TARGET_S, "worst_s": worst, "met": worst <= TARGET_S, "results": results,
           "machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0], "python": platform.python_version()},
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = ROOT / "bench" / "results" / "unreachable.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
