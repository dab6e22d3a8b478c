"""MLflow logging for the examples: per-epoch metrics, tags in batches, the evidence artifacts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras
import mlflow
import numpy as np

from projects.common import evidence, framework

MAX_TAGS_PER_BATCH = 100  # MLflow's log_batch limit


class EpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (loss, accuracy, val_*) at step = epoch."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)


def set_tags(tags: dict[str, str]) -> None:
    """Set tags on the active run, in as few store calls as MLflow allows."""
    items = [(k, str(v)) for k, v in tags.items()]
    for i in range(0, len(items), MAX_TAGS_PER_BATCH):
        mlflow.set_tags(dict(items[i:i + MAX_TAGS_PER_BATCH]))


def log_predictions(probs: np.ndarray, labels: np.ndarray) -> None:
    """The test predictions (float32 probabilities, int labels) as `repro/predictions.npz`."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "predictions.npz"
        np.savez_compressed(path, probabilities=np.asarray(probs, dtype=np.float32),
                            labels=np.asarray(labels).astype(np.int64))
        mlflow.log_artifact(str(path), artifact_path="repro")


def start(primary_metric: str, det_tags: dict[str, str], digests: evidence.Digests):
    """Open the MLflow run (the one in MLFLOW_RUN_ID if set) and write what is known before training."""
    run = mlflow.start_run()
    set_tags({**det_tags, "repro.primary_metric": primary_metric, "repro.digest.data": digests.data,
              "repro.digest.weights.initial": digests.weights_initial})
    return run


def finish(model, digests: evidence.Digests, probs: np.ndarray, labels: np.ndarray, metrics: dict[str, float],
           extra_tags: dict[str, str] | None = None) -> None:
    """Log the final metrics, digests, framework record and predictions to the active run."""
    digests.weights_final = evidence.digest_weights(model)
    digests.predictions = evidence.digest_predictions(probs)
    record = framework.describe(model)
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    set_tags({**digests.to_tags(), **framework.to_tags(record), **(extra_tags or {})})
    mlflow.log_dict(digests.to_dict(), "repro/digests.json")
    mlflow.log_dict(record, "repro/framework.json")
    log_predictions(probs, labels)
    print(json.dumps({"metrics": {k: round(float(v), 6) for k, v in metrics.items()},
                      "digest.weights": digests.weights_final[:16], "digest.predictions": digests.predictions[:16]}))
