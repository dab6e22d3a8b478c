"""Credit-card fraud data: Kaggle's `creditcard.csv`, or a bundled stand-in of the same shape.

Kaggle's file (mlg-ulb/creditcardfraud) has 284,807 rows, a header `"Time","V1",...,"V28","Amount","Class"`,
and 492 frauds (0.172%); the keras-io example uses every column but the last as a feature (30).
The stand-in has the same columns, size and fraud rate: rows sorted by Time over two days, V1-V28
centred normal with the real file's falling spreads, a long-tailed Amount. Its frauds are of three
kinds, so the boundary is not a plane and the classes overlap:
- shifted (LINEAR_SHARE): a normal transaction moved by a severity s ~ Beta(4, 1) along the
  direction of the real frauds' mean (V14, V17, V12, V10, V3, ...), to s x SEPARATION standard
  deviations (Mahalanobis) from the normal ones: what a linear model finds;
- unusual (RING_SHARE): far from the normal ones in RING_COLUMNS (V3, V10, V12, V14), in any
  direction, at RING_RADIUS standard deviations: on average where normal ones are, so no plane
  separates them, while the tail of the normal transactions reaches them (false positives);
- camouflaged (the rest): drawn exactly as normal transactions.
The balanced classifier (what class weights 1/count aim at) catches ~80% of frauds for some
hundreds of false positives; an unweighted linear one has to flag many normal transactions to
catch 70% (keras-io's model on the real file: 66 of 75 frauds, 441 false positives of 56,886).
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
SEPARATION = 7.0  # Mahalanobis distance of a shifted fraud of severity 1 from the normal transactions
SEVERITY_BETA = (4.0, 1.0)
LINEAR_SHARE = 0.6  # frauds shifted along the real frauds' mean
RING_SHARE = 0.32  # frauds far from the normal ones in any direction of RING_COLUMNS (the rest: camouflaged)
RING_COLUMNS = (3, 10, 12, 14)  # V<i>
RING_RADIUS = (4.5, 8.0)  # standard deviations, uniform


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
    kind = rng.random(frauds)
    severity = rng.beta(*SEVERITY_BETA, size=frauds) * (kind < LINEAR_SHARE)
    moved = v[fraud] + severity[:, None] * fraud_direction()
    ring = (kind >= LINEAR_SHARE) & (kind < LINEAR_SHARE + RING_SHARE)
    cols = np.array(RING_COLUMNS) - 1
    u = rng.standard_normal((frauds, len(cols)))
    u *= (rng.uniform(*RING_RADIUS, size=frauds) / np.linalg.norm(u, axis=1))[:, None]
    moved[np.ix_(ring, cols)] = u[ring] * SPREADS[cols]
    v[fraud] = moved
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
