"""Build small tracking stores synthetically (client.log_batch), as a sweep would leave them."""

from __future__ import annotations

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient


def add_runs(client: MlflowClient, experiment_id: str, runs: list[dict], start: int = 1_000) -> list[str]:
    """Each dict: tags, params, metrics (name -> value or list of per-step values), status (default FINISHED).
    Run i starts at `start + i` (ms)."""
    ids = []
    for i, r in enumerate(runs):
        run = client.create_run(experiment_id, start_time=start + i)
        rid = run.info.run_id
        metrics = []
        for k, v in (r.get("metrics") or {}).items():
            vals = v if isinstance(v, list) else [v]
            metrics += [Metric(k, float(x), 1_000 + step, step) for step, x in enumerate(vals)]
        client.log_batch(rid, metrics=metrics,
                         params=[Param(k, str(v)) for k, v in (r.get("params") or {}).items()],
                         tags=[RunTag(k, str(v)) for k, v in (r.get("tags") or {}).items()])
        client.set_terminated(rid, r.get("status", "FINISHED"))
        ids.append(rid)
    return ids


def study(sweep: str = "S", example: str = "mnist_convnet") -> list[dict]:
    """Two seeds x three environments x three repeats; env c is not repeatable; a and b agree."""
    values = {"a": [0.90, 0.90, 0.90], "b": [0.90, 0.90, 0.90], "c": [0.91, 0.93, 0.91]}
    runs = []
    for seed in (1, 2):
        for env, vals in values.items():
            for rep, v in enumerate(vals):
                acc = v + seed / 100
                runs.append({
                    "tags": {"mlflow.project.entryPoint": example, "repro.sweep": sweep, "repro.fp.env": env,
                             "repro.repeat": rep, "repro.primary_metric": "test_accuracy",
                             "repro.site": "site-" + ("x" if env in "ab" else "y"),
                             "repro.digest.weights": f"w-{seed}-{acc!r}", "repro.det.seed": seed},
                    "params": {"seed": seed, "epochs": 2},
                    "metrics": {"test_accuracy": acc, "test_loss": 1 - acc, "loss": [1.0, 0.5, 1 - acc]},
                })
    return runs


def frame(runs: list[dict]):
    """The table `load_runs` would return for these runs, built directly (no store)."""
    import pandas as pd

    rows = []
    for i, r in enumerate(runs):
        row = {"run_id": f"r{i:03d}", "experiment_id": "1", "status": r.get("status", "FINISHED"), "start_time": i,
               "artifact_uri": "", "run_name": f"run{i}"}
        row.update({"tags." + k: str(v) for k, v in (r.get("tags") or {}).items()})
        row.update({"params." + k: str(v) for k, v in (r.get("params") or {}).items()})
        row.update({"metrics." + k: float(v[-1] if isinstance(v, list) else v) for k, v in (r.get("metrics") or {}).items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    df["example"] = df.get("tags.mlflow.project.entryPoint", pd.Series("(none)", index=df.index)).fillna("(none)")
    return df
