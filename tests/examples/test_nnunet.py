"""nnU-Net v2 as an example: the generated data are deterministic and pass nnU-Net's integrity check;
`mlflow run . -e nnunet_segmentation --backend repro-local` trains, validates and is bitwise repeatable on
this CPU with in-process augmentation; a Decathlon run without its folder is refused before a run exists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.examples.examples_runs import ROOT, digests, finished, submit, wait

from projects.nnunet_segmentation import data

# The quick size: 5 cases of 16^3 (fold 0 = 4 training, 1 validation case), one short epoch.
QUICK = {"data": "synthetic", "cases": 5, "size": 16, "epochs": 1, "iterations_per_epoch": 2,
         "val_iterations_per_epoch": 1, "threads": 1}


def test_generated_data_are_deterministic_and_pass_nnunets_integrity_check(tmp_path):
    a = data.write_synthetic(tmp_path / "a", cases=5, size=16)
    b = data.write_synthetic(tmp_path / "b", cases=5, size=16)
    assert data.digest_folder(a) == data.digest_folder(b)
    assert sorted(p.name for p in (a / "labelsTr").iterdir()) == [f"case_{i:03d}.nii.gz" for i in range(5)]
    assert json.loads((a / "dataset.json").read_text())["labels"] == {"background": 0, "organ": 1, "lesion": 2}
    # nnU-Net's check forks a Pool of 12 from the calling process: from this one, which earlier tests left with
    # threads (a server's log readers, tqdm's monitor), a worker can inherit a held lock and hang (seen once in
    # CI); a fresh interpreter has none. It raises on a malformed dataset.
    check = ("import sys\nfrom nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity\n"
             "verify_dataset_integrity(sys.argv[1], 1)\n")
    p = subprocess.run([sys.executable, "-c", check, str(a)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


def test_generated_cases_differ_and_hold_both_structures():
    rng = [np.random.default_rng([data.DATA_SEED, 32, i]) for i in range(4)]
    cases = [data.make_case(r, 32) for r in rng]
    sizes = [tuple(int((label == k).sum()) for k in (1, 2)) for _, label in cases]
    assert all(organ > 0 and lesion > 0 for organ, lesion in sizes), sizes
    assert len(set(sizes)) == len(sizes), "shape and size vary between cases"
    image, label = cases[0]
    # the structures are visible but not trivially separable: their intensity ranges overlap
    inside, outside = image[label == 1], image[label == 0]
    assert inside.mean() > outside.mean() + 20
    assert inside.min() < np.percentile(outside, 99)


def test_too_few_cases_refused(tmp_path):
    with pytest.raises(data.DataError, match="at least 5 cases"):
        data.write_synthetic(tmp_path, cases=3, size=16)


@pytest.mark.slow
def test_two_runs_same_seed_finish_with_val_dice_and_agree_bit_for_bit(examples_env, tracking):
    from mlflow.tracking import MlflowClient

    ids = [submit(examples_env, "nnunet_segmentation", seed=1, **QUICK) for _ in range(2)]
    workers_id = submit(examples_env, "nnunet_segmentation", seed=1, **QUICK, augmentation_workers=1)
    runs = wait([*ids, workers_id], timeout_s=900)
    a, b = (runs[i] for i in ids)
    for run in (a, b):
        finished(run)
        m, tags = run.data.metrics, run.data.tags
        assert tags["repro.primary_metric"] == "val_dice"
        assert 0.0 <= m["val_dice"] <= 1.0, m
        assert {"val_dice_organ", "val_dice_lesion"} <= set(m), sorted(m)
        assert m["val_dice"] == pytest.approx((m["val_dice_organ"] + m["val_dice_lesion"]) / 2)
        assert 0 < m["train_seconds"] < (run.info.end_time - run.info.start_time) / 1000
        assert tags["repro.det.op_determinism"] == "true" and tags["repro.det.threads"] == "1"
        assert tags["repro.det.torch.deterministic_algorithms"] == "true"
        assert tags["repro.det.torch.cudnn_benchmark"] == "false"
        assert tags["repro.det.augmentation_workers"] == "0"
        assert tags["repro.nnunet.augmenter"].startswith("SingleThreadedAugmenter")
        assert tags["repro.nnunet.cudnn_benchmark"].startswith("n/a") and tags["repro.nnunet.autocast"].startswith("off")
        assert tags["repro.sw.nnunetv2"].startswith("2.8")
        assert tags["repro.sw.device"] == "cpu"
        assert tags["repro.nnunet.configuration"] == "3d_fullres"

    client = MlflowClient()
    history = client.get_metric_history(a.info.run_id, "train_loss")
    assert [h.step for h in history] == [0] and np.isfinite(history[0].value)
    assert [h.step for h in client.get_metric_history(a.info.run_id, "pseudo_dice")] == [0]

    da, db = digests(a), digests(b)
    expected = {"repro.digest.data", "repro.digest.weights.initial", "repro.digest.weights.epoch.1",
                "repro.digest.weights", "repro.digest.predictions"}
    assert expected <= set(da), sorted(da)
    assert da["repro.digest.weights.epoch.1"] == da["repro.digest.weights"]  # one epoch: its end is the end
    assert da["repro.digest.weights.initial"] != da["repro.digest.weights"]  # it trained
    assert da == db, "same seed, op determinism, augmentation in process: bit-identical on this CPU"
    assert a.data.metrics["val_dice"] == b.data.metrics["val_dice"]
    record = json.loads(open(client.download_artifacts(a.info.run_id, "repro/digests.json")).read())
    assert record["weights_final"] == da["repro.digest.weights"] and len(record["weights_epochs"]) == 1
    summary = json.loads(open(client.download_artifacts(a.info.run_id, "nnunet/validation_summary.json")).read())
    assert summary["foreground_mean"]["Dice"] == a.data.metrics["val_dice"]

    # One background augmentation worker: nnU-Net's unseeded NonDetMultiThreadedAugmenter, recorded as such.
    w = runs[workers_id]
    finished(w)
    assert w.data.tags["repro.det.augmentation_workers"] == "1"
    assert w.data.tags["repro.nnunet.augmenter"].startswith("NonDetMultiThreadedAugmenter (1 worker")
    assert 0.0 <= w.data.metrics["val_dice"] <= 1.0
    dw = digests(w)
    assert dw["repro.digest.data"] == da["repro.digest.data"]
    assert dw["repro.digest.weights.initial"] == da["repro.digest.weights.initial"]
    print(f"FINDING nnunet augmentation_workers=1 vs 0: weights "
          f"{'same' if dw['repro.digest.weights'] == da['repro.digest.weights'] else 'differ'}")


def test_msd_without_data_path_refused_before_a_run_exists(examples_env, tracking):
    from mlflow.tracking import MlflowClient

    out = subprocess.run(["mlflow", "run", str(ROOT), "-e", "nnunet_segmentation", "-P", "data=msd",
                          "--backend", "repro-local"], env=examples_env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "parameter 'data_path' is required when data=msd" in out.stderr
    client = MlflowClient()
    assert sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments()) == 0


def test_required_when_names_the_missing_parameter_and_passes_when_given():
    from repro_mlflow.errors import ReproError
    from repro_mlflow.submit.project import check_params, load_entry_points

    declared = load_entry_points(ROOT)["nnunet_segmentation"]["parameters"]
    with pytest.raises(ReproError, match=r"^nnunet_segmentation: parameter 'data_path' is required when data=msd$"):
        check_params("nnunet_segmentation", declared, {"data": "msd"})
    assert check_params("nnunet_segmentation", declared, {"data": "msd", "data_path": "/d/Task04"})["data_path"] == "/d/Task04"
    assert check_params("nnunet_segmentation", declared, {})["data_path"] == ""  # synthetic: not needed


def _as_decathlon_task(raw: Path, task: Path) -> Path:
    """The generated dataset laid out as a Medical Segmentation Decathlon task (3D images, MSD's dataset.json)."""
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task / sub).mkdir(parents=True)
    for p in sorted((raw / "imagesTr").iterdir()):
        shutil.copy(p, task / "imagesTr" / p.name.replace("_0000.nii.gz", ".nii.gz"))
    for p in sorted((raw / "labelsTr").iterdir()):
        shutil.copy(p, task / "labelsTr" / p.name)
    names = [p.name for p in sorted((task / "labelsTr").iterdir())]
    (task / "dataset.json").write_text(json.dumps({
        "name": "Synth", "modality": {"0": "MRI"}, "labels": {str(v): k for k, v in data.LABELS.items()},
        "numTraining": len(names), "numTest": 0, "test": [],
        "training": [{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"} for n in names]}))
    return task


def test_a_decathlon_task_is_converted_by_nnunets_converter(tmp_path, monkeypatch):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "nnUNet_raw"))  # nnU-Net reads its paths when used
    task = _as_decathlon_task(data.write_synthetic(tmp_path / "gen", cases=5, size=16), tmp_path / "Task09_Synth")
    raw = data.convert_msd(task)
    assert raw == tmp_path / "nnUNet_raw" / "Dataset600_Synth"
    assert len(list((raw / "imagesTr").glob("*_0000.nii.gz"))) == 5
    assert json.loads((raw / "dataset.json").read_text())["labels"] == data.LABELS
    verify_dataset_integrity(str(raw), 1)
    assert data.convert_msd(task) == raw  # a retried job converts again (the converter refuses a taken id)


def test_a_folder_that_is_no_decathlon_task_is_refused(tmp_path):
    (tmp_path / "Task09_Synth" / "imagesTr").mkdir(parents=True)
    with pytest.raises(data.DataError, match="missing: dataset.json, labelsTr, imagesTs"):
        data.convert_msd(tmp_path / "Task09_Synth")
