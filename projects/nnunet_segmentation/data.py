"""The nnU-Net example's data: generated volumes in nnU-Net's raw format, or a Decathlon task converted.

`write_synthetic(raw_root, cases, size)` writes `Dataset501_Synthetic/` (imagesTr/, labelsTr/,
dataset.json): one modality, NIfTI, two foreground structures per case (an ellipsoid "organ" and a
smaller blob "lesion" beside or inside it) of varying shape, size, position and contrast, under a
smooth multiplicative intensity field and Gaussian noise. The same arguments give the same bytes.
`convert_msd(task_folder, raw_root)` runs nnU-Net's own Decathlon converter.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

SYNTHETIC_ID = 501
SYNTHETIC_NAME = f"Dataset{SYNTHETIC_ID:03d}_Synthetic"
LABELS = {"background": 0, "organ": 1, "lesion": 2}
DATA_SEED = 20221017  # the data are fixed; the run's seed moves training only


class DataError(RuntimeError):
    """Data that cannot be used (one line, says why)."""


def _smooth_field(rng: np.random.Generator, size: int, strength: float) -> np.ndarray:
    """A smooth multiplicative bias field around 1: a few random low-frequency cosines."""
    g = np.linspace(0, np.pi, size, dtype=np.float64)
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    field = np.zeros((size,) * 3)
    for _ in range(3):
        fz, fy, fx = rng.uniform(0.3, 1.2, 3)
        pz, py, px = rng.uniform(0, np.pi, 3)
        field += np.cos(fz * z + pz) * np.cos(fy * y + py) * np.cos(fx * x + px)
    return 1.0 + strength * field / 3.0


def _ellipsoid(shape: int, centre: np.ndarray, radii: np.ndarray, rot: np.ndarray, wobble: float,
               rng: np.random.Generator) -> np.ndarray:
    """A rotated ellipsoid whose surface is perturbed by low-order harmonics (irregular, still one blob)."""
    idx = np.indices((shape,) * 3, dtype=np.float64).reshape(3, -1).T - centre
    local = idx @ rot
    r = np.sqrt(((local / radii) ** 2).sum(1))
    theta = np.arctan2(local[:, 1], local[:, 0])
    phi = np.arccos(np.clip(local[:, 2] / (np.linalg.norm(local, axis=1) + 1e-9), -1, 1))
    a, b, c = rng.uniform(-1, 1, 3)
    surface = 1.0 + wobble * (a * np.cos(2 * theta) + b * np.sin(3 * phi) + c * np.cos(theta + 2 * phi)) / 3
    return (r <= surface).reshape((shape,) * 3)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def make_case(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image float32, label uint8) of one case, both of shape (size, size, size)."""
    s = float(size)
    organ_r = rng.uniform(0.16, 0.28, 3) * s
    organ_c = rng.uniform(0.35, 0.65, 3) * s
    organ = _ellipsoid(size, organ_c, organ_r, _rotation(rng), rng.uniform(0.1, 0.3), rng)
    # the lesion: small, near the organ's border (half of it inside, on average)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    lesion_c = organ_c + direction * organ_r.mean() * rng.uniform(0.5, 1.1)
    lesion_c = np.clip(lesion_c, 0.15 * s, 0.85 * s)
    lesion = _ellipsoid(size, lesion_c, rng.uniform(0.11, 0.18, 3) * s, _rotation(rng), rng.uniform(0.1, 0.4), rng)
    label = np.zeros((size,) * 3, dtype=np.uint8)
    label[organ] = 1
    label[lesion] = 2
    background, organ_i = rng.uniform(80, 120), rng.uniform(135, 175)
    lesion_i = organ_i + rng.choice([-1, 1]) * rng.uniform(40, 70)  # darker or brighter than the organ
    image = np.full((size,) * 3, background)
    image[label == 1] = organ_i
    image[label == 2] = lesion_i
    texture = rng.normal(0, 1, (size,) * 3)
    image = image * _smooth_field(rng, size, rng.uniform(0.15, 0.35)) + texture * rng.uniform(14, 24)
    return image.astype(np.float32), label


def _write_nifti(array: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    img.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(img, str(path), useCompression=True)


def dataset_json(n_cases: int) -> dict:
    return {"channel_names": {"0": "MRI"}, "labels": dict(LABELS), "numTraining": n_cases,
            "file_ending": ".nii.gz", "name": SYNTHETIC_NAME, "description": "repro-mlflow generated volumes"}


def write_synthetic(raw_root: Path, cases: int = 20, size: int = 48, seed: int = DATA_SEED) -> Path:
    """Write the generated dataset under `raw_root`; return its folder (nnU-Net's raw layout)."""
    if cases < 5 or size < 16:
        raise DataError(f"synthetic data needs at least 5 cases (nnU-Net's 5 folds) and size 16, got {cases} and {size}")
    folder = Path(raw_root) / SYNTHETIC_NAME
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    for i in range(cases):
        rng = np.random.default_rng([seed, size, i])  # one stream per case: a case does not depend on N
        image, label = make_case(rng, size)
        _write_nifti(image, folder / "imagesTr" / f"case_{i:03d}_0000.nii.gz")
        _write_nifti(label, folder / "labelsTr" / f"case_{i:03d}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps(dataset_json(cases), indent=1, sort_keys=True))
    return folder


def convert_msd(task_folder: Path, dataset_id: int = 600) -> Path:
    """Convert a Decathlon task folder (e.g. Task04_Hippocampus) with nnU-Net's converter; return the raw folder.

    nnU-Net's paths must already point into the run's job directory (`nnUNet_raw`).
    """
    task_folder = Path(task_folder)
    missing = [n for n in ("dataset.json", "imagesTr", "labelsTr", "imagesTs") if not (task_folder / n).exists()]
    if missing or not re.fullmatch(r"Task\d+_[^_]+", task_folder.name):
        raise DataError(f"no Decathlon task at data_path {task_folder} (expected a TaskNN_Name folder with "
                        f"dataset.json, imagesTr/, labelsTr/, imagesTs/; missing: {', '.join(missing) or 'none'})")
    from nnunetv2.dataset_conversion.convert_MSD_dataset import convert_msd_dataset
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw, nnUNet_results

    for base in (nnUNet_raw, nnUNet_preprocessed, nnUNet_results):  # a retried job: the converter refuses a taken id
        for old in Path(base).glob(f"Dataset{dataset_id:03d}_*") if base.is_set() else ():
            shutil.rmtree(old)
    convert_msd_dataset(str(task_folder), overwrite_target_id=dataset_id, num_processes=1)
    found = sorted(Path(nnUNet_raw).glob(f"Dataset{dataset_id:03d}_*"))
    if not found:
        raise DataError(f"nnU-Net's converter wrote nothing for {task_folder}")
    return found[0]


def digest_folder(folder: Path) -> str:
    """sha256 over the relative names and bytes of the dataset's files (images, labels, dataset.json), in order."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()
