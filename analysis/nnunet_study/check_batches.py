"""Do nnU-Net's training batches differ between two runs of the same seed? (not part of the test suite)

    .venv/bin/python analysis/nnunet_study/check_batches.py [--batches 4] [--out FILE]

The study's quick size (5 generated cases of 16^3, `3d_fullres`), planned and preprocessed once by
nnU-Net; then, per `augmentation_workers` (nnUNet_n_proc_DA) 0 and 2, two fresh Python processes with
the same seed (1), op determinism on and 1 thread each build the entry point's trainer for fold 0 and
take the first N training batches from nnU-Net's own loader (`get_dataloaders()`, as `run_training`
does). Each batch's image and target arrays are hashed (sha256 of their bytes); the two processes'
sequences are compared. Prints one line per setting and writes the hashes as JSON with --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # projects/ is imported from the repository root
SEED = 1


def _digest(batch: dict) -> str:
    import numpy as np
    import torch

    h = hashlib.sha256()
    for key in ("data", "target"):
        parts = batch[key] if isinstance(batch[key], list) else [batch[key]]  # deep supervision: one per scale
        for a in parts:
            a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def trial(root: Path, workers: int, n: int) -> list[str]:
    """In a fresh process: the entry point's trainer with `workers` augmentation workers; its first n batches."""
    from projects.nnunet_segmentation import __main__ as entry

    args = entry.parse(["--seed", str(SEED), "--threads", "1", "--augmentation_workers", str(workers)])
    entry.nnunet_environment(root, args)
    import torch

    from repro_mlflow import determinism, evidence

    determinism.configure(settings=determinism.Settings(SEED, True, 1, None, True, "auto", "torch"))
    entry.use_workers(workers)
    from projects.nnunet_segmentation import trainer as tr

    preprocessed = next((root / "nnUNet_preprocessed").glob("Dataset*"))
    t = tr.make_trainer(preprocessed, "3d_fullres", 1, n, 1, torch.device("cpu"), evidence.reset())
    t.initialize()
    loader, val_loader = t.get_dataloaders()
    try:
        return [_digest(next(loader)) for _ in range(n)]
    finally:
        for ld in (loader, val_loader):
            if hasattr(ld, "_finish"):
                ld._finish()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--out", default="")
    p.add_argument("--trial", nargs=2, metavar=("ROOT", "WORKERS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.trial:
        print(json.dumps(trial(Path(a.trial[0]), int(a.trial[1]), a.batches)))
        return 0
    root = Path(tempfile.mkdtemp(prefix="nnunet-batches-"))
    from projects.nnunet_segmentation import __main__ as entry

    args = entry.parse([])
    entry.nnunet_environment(root, args)
    from projects.nnunet_segmentation import data

    raw = data.write_synthetic(root / "nnUNet_raw", cases=5, size=16)
    entry.plan_and_preprocess(int(raw.name[7:10]), "3d_fullres", check_integrity=False)
    result: dict = {"seed": SEED, "batches": a.batches, "size": "5 cases of 16^3, 3d_fullres", "settings": {}}
    for workers in (0, 2):
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, __file__, "--batches", str(a.batches), "--trial", str(root), str(workers)],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        same = [x == y for x, y in zip(*runs)]
        result["settings"][f"augmentation_workers={workers}"] = {"run_1": runs[0], "run_2": runs[1], "same": same}
        print(f"augmentation_workers={workers}: {sum(same)} of {len(same)} batches identical between two processes "
              f"of seed {SEED}")
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
