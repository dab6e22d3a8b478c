"""The analysis run: logged to MLflow from a second process, started before the runs are read.

Importing MLflow and opening its store takes seconds of CPU that no thread can overlap (imports hold
the GIL); in a process of its own it takes the second core while `repro analyze` reads and computes.
The child imports MLflow's client and the store module the URI needs (no pandas), then waits on its
stdin for one request (JSON: experiment, label, folder, metrics). It opens the store before the request
only where opening creates nothing (a sqlite file that exists), else once asked (a tracking server is not
asked before the request): a refused analysis creates nothing, not even a missing sqlite file. It logs the run and answers one JSON line
on stdout: `{"run_id": ...}` or `{"error": "..."}`. Stdin closed without a request: it exits, having
done nothing.

    REPRO_LOGRUN_URI=<tracking URI> python -m repro_mlflow.analysis.logrun

(The URI goes in the environment, never on the command line, where `ps` would show a password in it.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .. import tags as T
from ..errors import ReproError
from ..mlflow_sql import import_store, sqlite_file
from ..quickexit import end_program

REPORT = "report.html"
URI_VAR = "REPRO_LOGRUN_URI"


def open_client(tracking_uri: str):
    """An MlflowClient on `tracking_uri`."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def log_run(client, experiment_id: str, label: str, out_dir: str | Path, metrics: dict[str, float]) -> str:
    """An MLflow run in `experiment_id` tagged `repro.analysis_of=label`, holding the output folder as artifacts."""
    import time

    from mlflow.entities import Metric

    run = client.create_run(experiment_id, run_name=f"analysis {label}"[:250], tags={
        T.ANALYSIS_OF: label[:250],
        "mlflow.note.content": f"repro analyze of {label}: open the artifact {REPORT}.",
    })
    rid = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
    client.log_artifacts(rid, str(out_dir))
    client.set_terminated(rid, "FINISHED")
    return rid


class RunLogger:
    """The child process; `log` sends the request and returns the run id (ReproError with its one line)."""

    def __init__(self, tracking_uri: str):
        self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=dict(os.environ, **{URI_VAR: tracking_uri}))

    def log(self, experiment_id: str, label: str, out_dir: Path, metrics: dict[str, float]) -> str:
        request = {"experiment_id": experiment_id, "label": label, "out_dir": str(out_dir), "metrics": metrics}
        out, _ = self.proc.communicate(json.dumps(request))  # (a child already dead: its answer says why)
        answer = next((json.loads(x) for x in reversed(out.splitlines()) if x.startswith("{")), None)
        if not answer or "run_id" not in answer:
            why = (answer or {}).get("error") or f"the analysis run's process ended with {self.proc.returncode}"
            raise ReproError(f"logging the analysis run: {why}")
        return answer["run_id"]

    def cancel(self) -> None:
        """Close its stdin without a request: it exits having logged nothing (not waited for)."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()


def _one_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return text.splitlines()[0][:300] if text else type(e).__name__


def main() -> int:
    uri = os.environ[URI_VAR]
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    error, client = None, None
    try:
        import_store(uri)
        if sqlite_file(uri) is not None:  # opening it creates nothing
            client = open_client(uri)
            client.search_experiments(max_results=1)  # the database reached, its schema checked
    except Exception as e:  # noqa: BLE001 - said once a request comes
        error = _one_line(e)
    text = sys.stdin.read()
    if not text.strip():
        return 0
    if error is None:
        req = json.loads(text)
        try:
            client = client or open_client(uri)
            rid = log_run(client, req["experiment_id"], req["label"], req["out_dir"], req["metrics"])
            print(json.dumps({"run_id": rid}), flush=True)
            return 0
        except Exception as e:  # noqa: BLE001
            error = _one_line(e)
    from ..reach import redact_text  # a URI's password never shown

    print(json.dumps({"error": redact_text(error or "unknown error")}), flush=True)
    return 1


if __name__ == "__main__":
    end_program(main())  # answered: MLflow's teardown (0.4 s) would only delay `repro analyze`
