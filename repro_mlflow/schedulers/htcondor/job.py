#!/usr/bin/env python3
"""repro-mlflow's job starter on an HTCondor execute point: `repro_job.py RUN_ID RUN_INDEX`.

It is the job's executable (a copy of this file, sent with the job) and runs in the job's sandbox,
usually inside a stock framework container that has no repro_mlflow and maybe no mlflow. Stdlib
only; on a Python older than 3.10 it says so and exits 3. In the sandbox it finds the input files
`batch.json` (the batch record), `project.tar.gz` and `repro_runtime.zip`, then:

1. unpacks the project into `project/` and puts the runtime zip on PYTHONPATH;
2. installs the batch's `pip` extras, and mlflow-skinny if `import mlflow` fails, into
   `.repro_pydeps/` with pip, and puts that on PYTHONPATH;
3. starts the one worker entry of every backend, `python -m repro_mlflow.runtime batch.json RUN_INDEX`,
   its output copied to `repro_out/output.log`. The record's worker paths are relative to the
   sandbox: the command runs in `project/`, the run's local store is `repro_out/offline`, logged to
   first, always, and mirrored into the real run where the server can be reached (not offline);
4. exits with the command's exit code. `repro_out/` is the job's output file: HTCondor sends it
   back to `<batch>/runs/<i>/` on the submit side, where `repro sync` replays the offline store.

Every attempt (after an eviction) starts from a fresh `repro_out/`: a run is never resumed halfway.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile

OUT_DIR = "repro_out"
RECORD = "batch.json"  # the batch record, an input file of every proc


def _say(msg):
    sys.stderr.write("repro job: %s\n" % msg)
    sys.stderr.flush()


def _attempt():
    """NumJobStarts from the job ad HTCondor leaves in the sandbox ($_CONDOR_JOB_AD), or 1."""
    path = os.environ.get("_CONDOR_JOB_AD", ".job.ad")
    try:
        with open(path) as f:
            m = re.search(r"^NumJobStarts\s*=\s*(\d+)", f.read(), re.M)
    except OSError:
        return 1
    return max(1, int(m.group(1))) if m else 1


def _has_mlflow(env):
    return subprocess.call([sys.executable, "-c", "import mlflow"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def _bootstrap(spec, env, pydeps):
    """Install mlflow-skinny (if mlflow is missing) and the batch's pip extras into `pydeps`."""
    wanted = list(spec.get("pip") or [])
    if not _has_mlflow(env):
        wanted.insert(0, spec.get("mlflow_pip") or "mlflow-skinny")
    if not wanted:
        return 0
    _say("installing %s into %s" % (" ".join(wanted), pydeps))
    rc = subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "--target", pydeps] + wanted, env=env)
    if rc != 0:
        _say("pip could not install %s (exit %d); does the container have pip and network access?" % (wanted, rc))
    return rc


def main(argv):
    if len(argv) != 3:
        _say("usage: repro_job.py RUN_ID RUN_INDEX")
        return 2
    run_id, index = argv[1], int(argv[2])
    sandbox = os.getcwd()
    with open(os.path.join(sandbox, RECORD)) as f:
        record = json.load(f)
    runs = [r for r in record.get("runs") or [] if r.get("index") == index]
    if not runs or runs[0].get("run_id") != run_id:
        _say("%s has no run %s at index %d" % (RECORD, run_id, index))
        return 2
    spec = (record.get("scheduler") or {}).get("config") or {}  # pip, mlflow_pip
    if sys.version_info < (3, 10):  # noqa: UP036 - runs on an execute point's Python, whatever its version
        _say("python %s is too old for the repro runtime (3.10+ needed); pick a newer container" % sys.version.split()[0])
        return 3

    out = os.path.join(sandbox, OUT_DIR)
    shutil.rmtree(out, ignore_errors=True)  # a previous attempt's files: start this attempt afresh
    os.makedirs(os.path.join(out, "offline"))
    project = os.path.join(sandbox, "project")
    if not os.path.isdir(project):
        with tarfile.open(os.path.join(sandbox, "project.tar.gz")) as tar:
            tar.extractall(project)
    pydeps = os.path.join(sandbox, ".repro_pydeps")

    env = dict(os.environ)  # the worker adds the record's environment for the command
    path = [os.path.join(sandbox, "repro_runtime.zip"), project, pydeps]
    env["PYTHONPATH"] = os.pathsep.join(path + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # entry points say `python`: make it this Python (the one mlflow was found or installed for), not
    # whatever `python` comes first on the execute point's PATH (containers may have only python3)
    shim = os.path.join(sandbox, ".repro_bin")
    os.makedirs(shim, exist_ok=True)
    for name in ("python", "python3"):  # scripts, not symlinks: a symlink to a venv's python loses the venv
        path = os.path.join(shim, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec '%s' \"$@\"\n" % sys.executable.replace("'", "'\\''"))
        os.chmod(path, 0o755)
    env["PATH"] = shim + os.pathsep + env.get("PATH", os.defpath)

    with open(os.path.join(out, "output.log"), "ab") as log:
        # the batch's environment holds for the whole job, pip included (an index, a proxy)
        worker_env = {str(k): str(v) for k, v in ((record.get("worker") or {}).get("env") or {}).items()}
        rc = _bootstrap(spec, dict(env, **worker_env), pydeps)
        if rc != 0:
            return rc
        _say("run %s (index %d, attempt %d) in %s" % (run_id, index, _attempt(), project))
        proc = subprocess.Popen([sys.executable, "-m", "repro_mlflow.runtime", RECORD, str(index)],
                                cwd=sandbox, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

        def _forward(signum, _frame):  # eviction / condor_rm: the runtime ends the run and stops the command
            try:
                proc.send_signal(signum)
            except OSError:
                pass

        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(s, _forward)
        for line in iter(proc.stdout.readline, b""):
            log.write(line)
            log.flush()
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        rc = proc.wait()
        return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
