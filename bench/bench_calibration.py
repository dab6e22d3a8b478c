"""Benchmark: the bundled stand-ins at the keras-io defaults, to check they are as hard as the real data.

For each example it runs the full-size training once (`python -m projects.E --data bundled` with
the keras-io defaults: IMDB 2 epochs on 25,000 + 25,000 reviews at maxlen 200; fraud 30 epochs,
batch 2,048, 284,807 rows) into a fresh sqlite store, and records its metrics, `train_seconds` and
the run's wall time, beside the quick proxies the tests check (a count classifier and, for IMDB,
a bag-of-words logistic regression and, for IMDB, the generator's own reader with and without the
words' order; logistic regressions, class-weighted and not, for fraud). The calibration targets
(issue 14): IMDB test accuracy 0.80-0.90; fraud validation recall 0.70-0.95 with 100-2,000
false positives. Results merge into bench/results/calibration.json (one entry per example), so the
examples can be run one at a time. On a shared machine run it under `nice -n 19`.

    PYTHONPATH=. python bench/bench_calibration.py [--examples imdb_bilstm imbalanced_classification] [--proxies-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUTPUT = ROOT / "bench/results/calibration.json"
TARGETS = {
    "imdb_bilstm": {"test_accuracy": [0.80, 0.90]},
    "imbalanced_classification": {"val_recall": [0.70, 0.95], "val_fp": [100, 2000]},
}
KEPT = {  # the metrics worth recording per example
    "imdb_bilstm": ["test_accuracy", "test_loss", "train_seconds"],
    "imbalanced_classification": ["val_accuracy", "val_recall", "val_precision", "val_fp", "val_fn", "val_tp",
                                  "val_tn", "train_seconds"],
}


def proxies(example: str) -> dict:
    """The quick proxies at full size (what tests/examples/test_calibration.py checks at small sizes)."""
    from projects.common import proxies as px

    if example == "imdb_bilstm":
        from projects.imdb_bilstm import data

        (x_tr, y_tr), (x_te, y_te) = data.load_bundled(0, 0)
        return {f"maxlen_{m}": {"count_classifier": px.count_classifier_accuracy(x_tr, y_tr, x_te, y_te, maxlen=m),
                                "bag_of_words_logistic_regression": px.bag_of_words_accuracy(x_tr, y_tr, x_te, y_te, maxlen=m),
                                "oracle_words_only": data.oracle_accuracy(x_te, y_te, maxlen=m, order=False),
                                "oracle_with_order": data.oracle_accuracy(x_te, y_te, maxlen=m)} for m in (200, 32)}
    from projects.imbalanced_classification import data
    from projects.imbalanced_classification.__main__ import split

    import numpy as np

    (x_tr, y_tr), (x_val, y_val), class_weight = split(*data.generate())

    def squares(x):  # a curved boundary: V1..V28 squared beside the 30 columns
        return np.column_stack([x, x[:, 1:29] ** 2])

    return {"logistic_regression": px.logistic_regression(x_tr, y_tr[:, 0], x_val, y_val[:, 0], class_weight),
            "logistic_regression_unweighted": px.logistic_regression(x_tr, y_tr[:, 0], x_val, y_val[:, 0]),
            "logistic_regression_with_squares": px.logistic_regression(squares(x_tr), y_tr[:, 0], squares(x_val),
                                                                        y_val[:, 0], class_weight)}


def generator(example: str) -> str:
    """The version of the example's stand-in generator (a full-size record holds for that version only)."""
    if example == "imdb_bilstm":
        from projects.imdb_bilstm import data
    else:
        from projects.imbalanced_classification import data  # type: ignore[no-redef]
    return data.GENERATOR


def full_run(example: str, tmp: Path) -> dict:
    """One full-size training through the entry point; its metrics from the store and its wall time."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp / f'{example}.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("MLFLOW_RUN_ID", None)
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", f"projects.{example}", "--data", "bundled"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"bench_calibration: {example} failed ({out.returncode}): {out.stderr[-2000:]}")
    client = MlflowClient(uri)
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    m = run.data.metrics
    return {"params": "keras-io defaults, data=bundled", "wall_s": round(wall, 1), "loadavg_1m_at_start": round(load, 2),
            "metrics": {k: m[k] for k in KEPT[example] if k in m}, "primary_metric": run.data.tags["repro.primary_metric"]}


def within(targets: dict, metrics: dict) -> bool:
    return all(k in metrics and lo <= metrics[k] <= hi for k, (lo, hi) in targets.items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    p.add_argument("--proxies-only", action="store_true", help="skip the full-size trainings")
    p.add_argument("--output", default=str(OUTPUT))
    args = p.parse_args()
    result = json.loads(Path(args.output).read_text()) if Path(args.output).is_file() else {}
    result.update({"benchmark": "calibration", "targets": TARGETS,
                   "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}})
    examples = result.setdefault("examples", {})
    tmp = Path(tempfile.mkdtemp(prefix="bench_calibration_"))
    ok = True
    for ex in args.examples:
        entry: dict = {"measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "generator": generator(ex)}
        if not args.proxies_only:  # first: the proxies' own load must not overlap the timed training
            entry["full_size"] = full_run(ex, tmp)
            entry["within_targets"] = within(TARGETS[ex], entry["full_size"]["metrics"])
            ok &= entry["within_targets"]
            print(ex, "full size", json.dumps(entry["full_size"]), "within targets:", entry["within_targets"], flush=True)
        entry["proxies"] = proxies(ex)
        print(ex, "proxies", json.dumps(entry["proxies"]), flush=True)
        old = examples.get(ex, {})
        if args.proxies_only and "full_size" in old and old.get("generator") == entry["generator"]:  # still this data
            entry = {**examples[ex], "proxies": entry["proxies"], "proxies_measured_utc": entry["measured_utc"]}
        examples[ex] = entry
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
