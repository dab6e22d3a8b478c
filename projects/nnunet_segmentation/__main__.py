"""nnU-Net v2 (Isensee et al., Nature Methods 2021) on fold 0, with the study's evidence, tracked in MLflow.

python -m projects.nnunet_segmentation --data synthetic|msd [--data_path TASK] --epochs 2 --iterations_per_epoch 250
    --configuration 3d_fullres|2d --seed 1 [--op_determinism --threads --tf32 --onednn --augmentation_workers]

nnU-Net's own pipeline, in this process: the dataset in its raw format, its fingerprint, experiment
planning and preprocessing, its trainer (fold 0 of its 5-fold split) and its validation (whose
`summary.json` gives `val_dice`). nnU-Net's folders (`nnUNet_raw`, `nnUNet_preprocessed`,
`nnUNet_results`) live in the run's job directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from repro_mlflow import determinism

PRIMARY_METRIC = "val_dice"
CONFIGURATIONS = ("3d_fullres", "2d")
PROG = "nnunet_segmentation"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    determinism.add_arguments(p)
    p.add_argument("--augmentation_workers", type=int, default=0,
                   help="nnU-Net's nnUNet_n_proc_DA: 0 = augmentation in this process, N = N background workers")
    p.add_argument("--data", choices=["synthetic", "msd"], default="synthetic",
                   help="synthetic: generated volumes (offline); msd: a Decathlon task folder at --data_path")
    p.add_argument("--data_path", default="", help="with --data msd: a Decathlon task folder (e.g. Task04_Hippocampus)")
    p.add_argument("--cases", type=int, default=20, help="synthetic: number of cases")
    p.add_argument("--size", type=int, default=48, help="synthetic: edge of the cubic volumes, in voxels")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--iterations_per_epoch", type=int, default=250, help="nnU-Net's default is 250")
    p.add_argument("--val_iterations_per_epoch", type=int, default=0, help="pseudo-Dice batches per epoch (0: a fifth of the iterations, at least 1)")
    p.add_argument("--configuration", choices=CONFIGURATIONS, default="3d_fullres")
    p.add_argument("--work_dir", default="", help="where nnU-Net's folders go (default: the run's job directory)")
    return p.parse_args(argv)


def refusal(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot run (one line), or None."""
    if args.data == "msd" and not args.data_path:
        return "data=msd needs data_path: a Decathlon task folder such as Task04_Hippocampus"
    if args.data == "msd" and not Path(args.data_path).is_dir():
        return f"no folder at data_path {args.data_path}"
    if args.epochs < 1 or args.iterations_per_epoch < 1 or args.val_iterations_per_epoch < 0:
        return "epochs and iterations_per_epoch must be at least 1, val_iterations_per_epoch 0 or more"
    if args.augmentation_workers < 0:
        return f"augmentation_workers must be 0 (in process) or more, got {args.augmentation_workers}"
    if args.data == "synthetic" and (args.cases < 5 or args.size < 16):
        return f"synthetic data needs cases >= 5 (nnU-Net's 5 folds) and size >= 16, got {args.cases} and {args.size}"
    return None


def job_dir(args: argparse.Namespace) -> Path:
    """The run's job directory (beside its offline store on every backend), or --work_dir, or a temporary one."""
    if args.work_dir:
        return Path(args.work_dir)
    offline = os.environ.get("REPRO_OFFLINE_DIR")
    if offline:
        return Path(offline).parent / "nnunet"
    return Path(tempfile.mkdtemp(prefix="nnunet-"))


def nnunet_environment(root: Path, args: argparse.Namespace) -> dict[str, str]:
    """nnU-Net's environment variables (read when its modules are first imported): folders, workers, compile."""
    env = {"nnUNet_raw": str(root / "nnUNet_raw"), "nnUNet_preprocessed": str(root / "nnUNet_preprocessed"),
           "nnUNet_results": str(root / "nnUNet_results"),
           "nnUNet_n_proc_DA": "1",  # planning sizes torch's threads from it (0 fails there); training: use_workers
           "nnUNet_def_n_proc": "1",  # validation's export and metrics: one worker process
           "nnUNet_compile": "false"}  # torch.compile is off on a CPU anyway; on a GPU it would cost minutes per run
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[k]).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    os.environ.setdefault("MPLBACKEND", "Agg")  # nnU-Net plots its progress every epoch
    return env


def use_workers(workers: int) -> None:
    """nnU-Net's augmentation workers for training (it reads `nnUNet_n_proc_DA` when building its loaders)."""
    os.environ["nnUNet_n_proc_DA"] = str(workers)


def plan_and_preprocess(dataset_id: int, configuration: str, check_integrity: bool) -> Path:
    """nnU-Net's fingerprint (after its dataset integrity check, if asked), plans and preprocessing of one
    configuration; returns the preprocessed folder."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    extract_fingerprints([dataset_id], num_processes=1, check_dataset_integrity=check_integrity, verbose=False, show_progress_bar=False)
    plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=[configuration], num_processes=[1], show_progress_bar=False)
    return Path(nnUNet_preprocessed) / convert_id_to_dataset_name(dataset_id)


def factor_tags(args: argparse.Namespace, det_tags: dict[str, str], predictor, device) -> dict[str, str]:
    """What nnU-Net did with the factors: augmentation in or out of process, what it overrode."""
    import torch

    aug = args.augmentation_workers
    tags = {"repro.det.augmentation_workers": str(aug),
            "repro.nnunet.augmenter": "SingleThreadedAugmenter (in process)" if aug == 0
            else f"NonDetMultiThreadedAugmenter ({aug} worker processes, unseeded)",
            "repro.nnunet.compile": "false (nnUNet_compile=false)",
            "repro.nnunet.autocast": "float16 autocast and GradScaler (nnU-Net on cuda)" if device.type == "cuda"
            else "off (cpu: float32)",
            "repro.nnunet.predict_threads": "1 (nnU-Net sets torch threads to nnUNet_def_n_proc=1 while predicting)"}
    seen = predictor.benchmark_seen
    if device.type != "cuda":
        tags["repro.nnunet.cudnn_benchmark"] = "n/a (cpu: no cuDNN)"
        tags["repro.nnunet.tf32"] = "no effect (cpu)"
    elif seen and args.op_determinism:
        tags["repro.nnunet.cudnn_benchmark"] = "off (nnU-Net's predictor turned it on; reset under op_determinism)"
    elif seen:
        tags["repro.nnunet.cudnn_benchmark"] = "on in validation (nnU-Net's predictor turned it on)"
    else:
        tags["repro.nnunet.cudnn_benchmark"] = f"{str(bool(torch.backends.cudnn.benchmark)).lower()}"
    requested = int(det_tags.get("repro.det.threads.requested", "0"))
    if requested and int(det_tags.get("repro.det.torch.num_threads", "0")) != torch.get_num_threads():
        tags["repro.nnunet.threads"] = f"changed by nnU-Net: {torch.get_num_threads()} torch threads at the end"
    return tags


def software_tags(device) -> dict[str, str]:
    """The framework build and where the network ran (`repro.sw.*`), with nnU-Net's version."""
    from importlib.metadata import version

    import torch

    build = f"torch {torch.__version__}" + (f" cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()}"
                                            if torch.version.cuda else " cpu-only")
    where = str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    return {"repro.sw.nnunetv2": version("nnunetv2"), "repro.sw.framework_build": build, "repro.sw.device": where,
            "repro.sw.frameworks_loaded": ",".join(sorted(m for m in ("tensorflow", "jax", "torch", "torchvision")
                                                          if m in sys.modules))}


def main(argv=None) -> int:
    args = parse(argv)
    why = refusal(args)
    if why:
        print(f"{PROG}: {why}", file=sys.stderr)
        return 2
    root = job_dir(args)
    nnunet_environment(root, args)
    try:
        det_tags = determinism.configure(settings=determinism.Settings(
            args.seed, args.op_determinism, args.threads, args.tf32, args.onednn, "auto", "torch"))
    except determinism.DeterminismError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    import mlflow
    import torch

    from projects.nnunet_segmentation import data
    from repro_mlflow import evidence

    try:
        if args.data == "synthetic":
            raw = data.write_synthetic(Path(os.environ["nnUNet_raw"]), args.cases, args.size)
        else:
            raw = data.convert_msd(Path(args.data_path))
    except data.DataError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    dataset_id = int(raw.name[len("Dataset"):len("Dataset") + 3])
    digests = evidence.reset()
    digests.data = data.digest_folder(raw)
    # the generated data pass nnU-Net's integrity check by construction (tests/examples/test_nnunet.py)
    preprocessed = plan_and_preprocess(dataset_id, args.configuration, check_integrity=args.data == "msd")
    determinism.apply(determinism.Settings(args.seed, args.op_determinism, args.threads, args.tf32, args.onednn,
                                           "auto", "torch"))  # planning moved torch's threads and RNG: again, as set

    use_workers(args.augmentation_workers)
    from projects.nnunet_segmentation import trainer as tr

    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    predictor = tr.use_predictor(keep_benchmark_off=args.op_determinism)
    val_iters = args.val_iterations_per_epoch or max(1, args.iterations_per_epoch // 5)
    try:
        trainer = tr.make_trainer(preprocessed, args.configuration, args.epochs, args.iterations_per_epoch, val_iters,
                                  device, digests)
    except ValueError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    with mlflow.start_run():
        trainer.initialize()
        digests.weights_initial = evidence.digest_weights(tr.network_of(trainer))
        evidence.set_tags({**det_tags, "repro.primary_metric": PRIMARY_METRIC, "repro.digest.data": digests.data,
                           "repro.digest.weights.initial": digests.weights_initial,
                           "repro.nnunet.configuration": args.configuration,
                           "repro.nnunet.patch_size": "x".join(map(str, trainer.configuration_manager.patch_size)),
                           "repro.nnunet.batch_size": str(trainer.configuration_manager.batch_size)})
        t0 = time.perf_counter()
        trainer.run_training()
        trainer.perform_actual_validation(save_probabilities=False)
        wall = time.perf_counter() - t0
        summary = tr.validation_summary(trainer)
        segs = tr.validation_segmentations(trainer)
        digests.predictions = evidence.digest_arrays(_read_segmentations(segs))
        metrics = {PRIMARY_METRIC: float(summary["foreground_mean"]["Dice"]), "train_seconds": trainer.train_seconds,
                   "train_and_validate_seconds": wall, "val_cases": float(len(segs))}
        names = {str(v): k for k, v in trainer.dataset_json["labels"].items()}
        metrics.update({f"val_dice_{names.get(label, label)}": float(m["Dice"]) for label, m in summary["mean"].items()})
        mlflow.log_metrics(metrics)
        evidence.log_evidence(tr.network_of(trainer), digests=digests, save_weights=False,
                              tags={**software_tags(device), **factor_tags(args, det_tags, predictor, device)})
        mlflow.log_dict(summary, "nnunet/validation_summary.json")
        mlflow.log_artifact(str(preprocessed / "nnUNetPlans.json"), artifact_path="nnunet")
    _tidy(root)
    print({k: round(v, 6) for k, v in metrics.items()}, "digest.weights", digests.weights_final[:16])
    return 0


def _read_segmentations(paths: list[Path]) -> list:
    import SimpleITK as sitk

    return [sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in paths]


def _tidy(root: Path) -> None:
    """Drop what can be remade (preprocessed arrays, checkpoints); keep the raw data's dataset.json, logs, summaries."""
    shutil.rmtree(root / "nnUNet_preprocessed", ignore_errors=True)
    for p in (root / "nnUNet_results").rglob("*.pth"):
        p.unlink()


if __name__ == "__main__":
    sys.exit(main())
