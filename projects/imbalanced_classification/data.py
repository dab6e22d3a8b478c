"""Credit-card fraud data: Kaggle's `creditcard.csv`, or a bundled stand-in of the same shape.

Kaggle's file (mlg-ulb/creditcardfraud) has 284,807 rows, a header `"Time","V1",...,"V28","Amount","Class"`,
and 492 frauds (0.172%); the keras-io example uses every column but the last as a feature (30).
The stand-in has the same columns, size and fraud rate: rows sorted by Time over two days, V1-V28
centred normal with the real file's falling spreads, a long-tailed Amount. It is as hard as the
real data, with a known Bayes rate: a fraud is a normal transaction moved by a severity s along
the direction of the real frauds' mean (V14, V17, V12, V10, V3, V7, V4, V11, ...), to s x 8 standard
deviations (Mahalanobis) from the normal ones, with s ~ Beta(4, 1); 12% of frauds are camouflaged
(s = 0, indistinguishable from normal ones). The classes overlap: the balanced Bayes classifier
(what class weights 1/count aim at) catches ~87% of frauds and flags ~0.7% of normal transactions,
as keras-io's model on the real file (66 of 75 frauds, 441 false positives of 56,886).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

REAL_ROWS = 284807
REAL_FRAUDS = 492
COLUMNS = ["Time"] + [f"V{i}" for i in range(1, 29)] + ["Amount", "Class"]
GENERATOR = "2: structure (issue 25)"  # bench/results/calibration.json records per version
BUNDLED_SEED = 20220103  # fixed: the stand-in is the same everywhere
# Mean of V<i> among frauds, rounded from the real file (the non-fraud means are about 0).
FRAUD_SHIFT = {1: -4.8, 2: 3.6, 3: -7.0, 4: 4.5, 5: -3.2, 6: -1.4, 7: -5.6, 9: -2.6, 10: -5.7, 11: 3.8,
               12: -6.3, 14: -7.0, 16: -4.1, 17: -6.7, 18: -2.2, 19: 0.7}
SPREADS = np.linspace(1.96, 0.33, 28)  # standard deviations of V1..V28, falling as the real file's
SEPARATION = 8.0  # Mahalanobis distance of a fraud of severity 1 from the normal transactions
SEVERITY_BETA = (4.0, 1.0)
CAMOUFLAGED = 0.12  # share of frauds drawn exactly as normal transactions


def fraud_direction() -> np.ndarray:
    """The shift (V1..V28) of a fraud of severity 1: the real frauds' mean, scaled to SEPARATION."""
    shift = np.zeros(28)
    for i, mean in FRAUD_SHIFT.items():
        shift[i - 1] = mean
    return shift * SEPARATION / np.linalg.norm(shift / SPREADS)


def generate(rows: int = REAL_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """`rows` stand-in rows: features (rows, 30) float32 and 0/1 targets (rows,) uint8."""
    rng = np.random.default_rng(BUNDLED_SEED)
    frauds = max(1, round(rows * REAL_FRAUDS / REAL_ROWS))
    targets = np.zeros(rows, dtype=np.uint8)
    targets[rng.choice(rows, size=frauds, replace=False)] = 1
    time = np.sort(rng.uniform(0, 172792, size=rows)).round()
    v = rng.standard_normal((rows, 28)) * SPREADS
    fraud = targets == 1
    severity = rng.beta(*SEVERITY_BETA, size=frauds) * (rng.random(frauds) >= CAMOUFLAGED)
    v[fraud] += severity[:, None] * fraud_direction()
    amount = np.round(rng.lognormal(np.log(22.0), 1.4, size=rows), 2)
    features = np.column_stack([time, v, amount]).astype(np.float32)
    return features, targets


def write_csv(path: Path, rows: int) -> Path:
    """Write the stand-in in Kaggle's format (quoted header and class), for the `data_path` route."""
    features, targets = generate(rows)
    with open(path, "w", newline="") as f:
        f.write(",".join(f'"{c}"' for c in COLUMNS) + "\n")
        for x, y in zip(features, targets):
            f.write(",".join(repr(float(v)) for v in x) + f',"{int(y)}"\n')
    return Path(path)


def read_csv(path: str, rows: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Read Kaggle's `creditcard.csv` (or a file like it): every column but the last as features."""
    p = Path(path)
    if not p.is_file():
        raise RuntimeError(f"no file at data_path '{path}' (download creditcard.csv from "
                           "kaggle.com/datasets/mlg-ulb/creditcardfraud, or use data=bundled)")
    features, targets = [], []
    with open(p, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[-1].strip() != "Class":
            raise RuntimeError(f"{path}: expected a header ending in \"Class\", got {header}")
        for line_no, row in enumerate(reader, start=2):
            try:
                features.append([float(v) for v in row[:-1]])
                targets.append(int(row[-1]))
            except (ValueError, IndexError):
                raise RuntimeError(f"{path}:{line_no}: not a row of numbers ending in the class") from None
            if rows and len(targets) >= rows:
                break
    if not targets:
        raise RuntimeError(f"{path}: no data rows")
    return np.array(features, dtype=np.float32), np.array(targets, dtype=np.uint8)


def load(source: str, rows: int = 0, data_path: str = "creditcard.csv") -> tuple[np.ndarray, np.ndarray]:
    if source == "bundled":
        return generate(rows or REAL_ROWS)
    if source == "csv":
        return read_csv(data_path, rows)
    raise RuntimeError(f"unknown data source '{source}' (csv or bundled)")
