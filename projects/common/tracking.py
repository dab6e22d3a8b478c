"""MLflow logging for the examples: per-epoch metrics, the framework record; evidence through `repro_mlflow.evidence`."""

from __future__ import annotations

import json

import keras
import mlflow
import numpy as np

from projects.common import framework
from repro_mlflow import evidence


class EpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (loss, accuracy, val_*) at step = epoch."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)


def start(primary_metric: str, det_tags: dict[str, str], digests: evidence.Digests):
    """Open the MLflow run (the one in MLFLOW_RUN_ID if set) and write what is known before training."""
    run = mlflow.start_run()
    evidence.set_tags({**det_tags, "repro.primary_metric": primary_metric, "repro.digest.data": digests.data,
                       "repro.digest.weights.initial": digests.weights_initial})
    return run


def finish(model, digests: evidence.Digests, probs: np.ndarray, labels: np.ndarray, metrics: dict[str, float],
           extra_tags: dict[str, str] | None = None) -> None:
    """Log the final metrics, the evidence (digests, predictions) and the framework record to the active run."""
    record = framework.describe(model)
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    evidence.log_evidence(model, predictions=probs, labels=labels, digests=digests, save_weights=False,
                          tags={**framework.to_tags(record), **(extra_tags or {})})
    mlflow.log_dict(record, "repro/framework.json")
    print(json.dumps({"metrics": {k: round(float(v), 6) for k, v in metrics.items()},
                      "digest.weights": digests.weights_final[:16], "digest.predictions": digests.predictions[:16]}))
