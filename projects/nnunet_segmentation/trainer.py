"""nnU-Net's own trainer, with the study's evidence at the end of every epoch.

`make_trainer(...)` builds `nnUNetTrainer` for fold 0 of a planned and preprocessed dataset with the
run's epochs and iterations; every epoch logs nnU-Net's train loss, validation loss, pseudo-Dice (its
EMA and per label), the cumulative `train_seconds`, and the network's weights digest
(`repro_mlflow.evidence.log_epoch`). Import it only after nnU-Net's path variables are set.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import torch
from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as trainer_module
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from repro_mlflow import evidence

FOLD = 0


def network_of(trainer: nnUNetTrainer) -> torch.nn.Module:
    """The trained module itself (unwrapped from torch.compile's OptimizedModule when compiled)."""
    return getattr(trainer.network, "_orig_mod", trainer.network)


class EvidenceTrainer(nnUNetTrainer):
    """nnUNetTrainer logging per-epoch metrics and weight digests to the active MLflow run."""

    digests: evidence.Digests
    train_seconds: float = 0.0
    _epoch_t0: float = 0.0

    def on_train_epoch_start(self) -> None:
        self._epoch_t0 = time.perf_counter()
        super().on_train_epoch_start()

    def on_train_epoch_end(self, train_outputs) -> None:
        super().on_train_epoch_end(train_outputs)
        self.train_seconds += time.perf_counter() - self._epoch_t0  # the training iterations alone

    def on_epoch_end(self) -> None:
        epoch = self.current_epoch
        super().on_epoch_end()  # increments current_epoch
        get = self.logger.get_value
        dice = [float(d) for d in get("dice_per_class_or_region", step=-1)]
        metrics = {"train_loss": float(get("train_losses", step=-1)), "val_loss": float(get("val_losses", step=-1)),
                   "pseudo_dice": float(get("mean_fg_dice", step=-1)), "ema_pseudo_dice": float(get("ema_fg_dice", step=-1)),
                   "train_seconds": self.train_seconds}
        metrics.update({f"pseudo_dice_{label}": d for label, d in zip(self.label_manager.foreground_labels, dice)})
        mlflow.log_metrics(metrics, step=epoch)
        evidence.log_epoch(network_of(self), self.digests)


class _Predictor(trainer_module.nnUNetPredictor):
    """nnU-Net's predictor, which turns `cudnn.benchmark` on for CUDA devices; kept off under op determinism."""

    keep_benchmark_off = False
    benchmark_seen: bool | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        type(self).benchmark_seen = bool(torch.backends.cudnn.benchmark)
        if type(self).keep_benchmark_off:
            torch.backends.cudnn.benchmark = False


def use_predictor(keep_benchmark_off: bool) -> type:
    """Make nnU-Net's validation build `_Predictor` (returns it, to read `benchmark_seen` afterwards)."""
    _Predictor.keep_benchmark_off = keep_benchmark_off
    trainer_module.nnUNetPredictor = _Predictor
    return _Predictor


def make_trainer(preprocessed: Path, configuration: str, epochs: int, iterations: int, val_iterations: int,
                 device: torch.device, digests: evidence.Digests) -> EvidenceTrainer:
    """The trainer for fold 0 of the one dataset under `preprocessed` (nnU-Net's default plans)."""
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    if configuration not in plans["configurations"]:
        raise ValueError(f"nnU-Net planned no '{configuration}' configuration for this dataset "
                         f"(planned: {', '.join(plans['configurations'])})")
    dataset = json.loads((preprocessed / "dataset.json").read_text())
    plans["continue_training"] = False
    trainer = EvidenceTrainer(plans=plans, configuration=configuration, fold=FOLD, dataset_json=dataset, device=device)
    trainer.num_epochs = epochs
    trainer.num_iterations_per_epoch = iterations
    trainer.num_val_iterations_per_epoch = val_iterations
    trainer.save_every = epochs + 1  # no periodic checkpoint: the digests are the evidence
    trainer.digests = digests
    return trainer


def validation_summary(trainer: nnUNetTrainer) -> dict:
    """nnU-Net's own validation summary (`fold_0/validation/summary.json`)."""
    return json.loads((Path(trainer.output_folder) / "validation" / "summary.json").read_text())


def validation_segmentations(trainer: nnUNetTrainer) -> list[Path]:
    """The predicted validation segmentations, by case name."""
    ending = trainer.dataset_json["file_ending"]
    return sorted(p for p in (Path(trainer.output_folder) / "validation").iterdir() if p.name.endswith(ending))
