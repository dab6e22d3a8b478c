"""Imbalanced classification: credit card fraud (keras-io), deterministic and tracked in MLflow.

python -m projects.imbalanced_classification --data csv --data_path creditcard.csv | --data bundled [--rows N]

The last 20% of rows are the validation set (the keras-io split, no shuffle); features are
normalised by the training rows' mean and std; class weights are 1/count. Metrics: validation
accuracy (the study's) beside the confusion counts, precision and recall, at the 0.5 threshold.
"""

from __future__ import annotations

import argparse
import sys
import time

from repro_mlflow import determinism

# The study's metric: binary accuracy over the validation rows (0.99393 = 56,615 / 56,961). With
# 0.17% frauds a model that never flags one scores 0.998, so val_recall and val_fp stand beside it.
PRIMARY_METRIC = "val_accuracy"
VALIDATION_FRACTION = 0.2


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="imbalanced_classification", description=__doc__)
    determinism.add_arguments(p)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch_size", type=int, default=2048)
    p.add_argument("--learning_rate", type=float, default=1e-2)
    p.add_argument("--data", choices=["csv", "bundled"], default="csv",
                   help="csv: Kaggle's creditcard.csv at --data_path; bundled: generated stand-in")
    p.add_argument("--data_path", default="creditcard.csv", help="path to creditcard.csv (data=csv)")
    p.add_argument("--rows", type=int, default=0, help="use the first N rows (0 = all)")
    return p.parse_args(argv)


def build_model(n_features: int):
    import keras

    return keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def split(features, targets):
    """keras-io: last 20% as validation; normalise by the training mean and std; weights 1/count."""
    import numpy as np

    n_val = int(len(features) * VALIDATION_FRACTION)
    if n_val < 1 or n_val == len(features):
        raise RuntimeError(f"{len(features)} rows are too few to split 80/20")
    x_tr, y_tr = features[:-n_val].copy(), targets[:-n_val].reshape(-1, 1)
    x_val, y_val = features[-n_val:].copy(), targets[-n_val:].reshape(-1, 1)
    counts = np.bincount(y_tr[:, 0], minlength=2)
    if counts[1] == 0 or counts[0] == 0:
        raise RuntimeError(f"the training rows hold {counts[1]} frauds and {counts[0]} others; both are needed")
    mean = np.mean(x_tr, axis=0)
    x_tr -= mean
    x_val -= mean
    std = np.std(x_tr, axis=0)
    std[std == 0] = 1.0
    x_tr /= std
    x_val /= std
    return (x_tr, y_tr), (x_val, y_val), {0: 1.0 / counts[0], 1: 1.0 / counts[1]}


def main(argv=None) -> int:
    args = parse(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.rows < 0 or args.learning_rate <= 0:
        print("imbalanced_classification: epochs, batch_size at least 1, rows 0 or more, learning_rate above 0", file=sys.stderr)
        return 2
    det_tags = determinism.configure(settings=determinism.Settings.from_args(args))
    import keras

    from projects.common import tracking
    from repro_mlflow import evidence
    from projects.imbalanced_classification.data import load

    try:
        features, targets = load(args.data, args.rows, args.data_path)
        (x_train, y_train), (x_val, y_val), class_weight = split(features, targets)
    except RuntimeError as e:
        print(f"imbalanced_classification: {e}", file=sys.stderr)
        return 2

    model = build_model(x_train.shape[1])
    metrics = [keras.metrics.BinaryAccuracy(name="accuracy"),
               keras.metrics.FalseNegatives(name="fn"), keras.metrics.FalsePositives(name="fp"),
               keras.metrics.TrueNegatives(name="tn"), keras.metrics.TruePositives(name="tp"),
               keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="binary_crossentropy", metrics=metrics,
                  jit_compile=determinism.jit_compile(args))
    digests = evidence.Digests(data=evidence.digest_arrays([x_train, y_train, x_val, y_val]),
                               weights_initial=evidence.digest_weights(model))
    with tracking.start(PRIMARY_METRIC, {**det_tags, **determinism.xla_tag(model)}, digests):
        t0 = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
                            validation_data=(x_val, y_val), class_weight=class_weight,
                            callbacks=[tracking.EpochLogger(), evidence.keras_callback(digests)])
        train_seconds = time.perf_counter() - t0  # the fit alone: what determinism costs
        probs = model.predict(x_val, batch_size=args.batch_size, verbose=0)[:, 0]  # as the validation pass
        final = {k: v[-1] for k, v in history.history.items() if k.startswith("val_")}
        tracking.finish(model, digests, probs, y_val[:, 0], {"train_seconds": train_seconds},
                        extra_tags={"repro.data.frauds": f"train {int(y_train.sum())}, val {int(y_val.sum())}"})
        print({k: round(float(v), 4) for k, v in final.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
