"""MLflow logging for the examples: per-epoch metrics with steps, tags, final results."""

from __future__ import annotations

import keras
import mlflow


class EpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (loss, accuracy, val_*) at step = epoch."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)
