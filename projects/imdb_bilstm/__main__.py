"""Bidirectional LSTM on IMDB (keras-io "Bidirectional LSTM on IMDB"), deterministic and tracked in MLflow.

python -m projects.imdb_bilstm --seed 1 --epochs 2 --data keras|bundled [--n_train N --n_test N --maxlen 200]
"""

from __future__ import annotations

import argparse
import sys
import time

from repro_mlflow import determinism

PRIMARY_METRIC = "test_accuracy"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="imdb_bilstm", description=__doc__)
    determinism.add_arguments(p)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--maxlen", type=int, default=200, help="tokens kept per review (pad/truncate at the front, as keras-io)")
    p.add_argument("--data", choices=["keras", "bundled"], default="keras",
                   help="keras: keras.datasets.imdb (needs network or a KERAS_HOME cache); bundled: generated stand-in")
    p.add_argument("--n_train", type=int, default=0, help="training reviews used (0 = all 25,000)")
    p.add_argument("--n_test", type=int, default=0, help="test reviews used (0 = all 25,000)")
    return p.parse_args(argv)


def build_model(max_features: int):
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(max_features, 128)(inputs)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(64))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def main(argv=None) -> int:
    args = parse(argv)
    if min(args.epochs, args.batch_size, args.maxlen) < 1 or min(args.n_train, args.n_test) < 0:
        print("imdb_bilstm: epochs, batch_size and maxlen must be at least 1, n_train and n_test 0 or more", file=sys.stderr)
        return 2
    det_tags = determinism.configure(settings=determinism.Settings.from_args(args))
    import keras
    import numpy as np

    from projects.common import tracking
    from repro_mlflow import evidence
    from projects.imdb_bilstm.data import MAX_FEATURES, load

    try:
        (x_train, y_train), (x_test, y_test) = load(args.data, args.n_train, args.n_test)
    except RuntimeError as e:
        print(f"imdb_bilstm: {e}", file=sys.stderr)
        return 2
    x_train = keras.utils.pad_sequences(x_train, maxlen=args.maxlen)
    x_test = keras.utils.pad_sequences(x_test, maxlen=args.maxlen)
    y_train, y_test = np.asarray(y_train, dtype=np.float32), np.asarray(y_test, dtype=np.float32)

    model = build_model(MAX_FEATURES)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"],
                  jit_compile=determinism.jit_compile(args))
    digests = evidence.Digests(data=evidence.digest_arrays([x_train, y_train, x_test, y_test]),
                               weights_initial=evidence.digest_weights(model))
    with tracking.start(PRIMARY_METRIC, {**det_tags, **determinism.xla_tag(model)}, digests):
        t0 = time.perf_counter()
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_data=(x_test, y_test),
                  callbacks=[tracking.EpochLogger(), evidence.keras_callback(digests)], verbose=2)
        train_seconds = time.perf_counter() - t0  # the fit alone: what determinism costs
        loss, acc = model.evaluate(x_test, y_test, verbose=0)
        probs = model.predict(x_test, verbose=0)[:, 0]
        tracking.finish(model, digests, probs, y_test, {"test_loss": loss, "test_accuracy": acc,
                                                       "train_seconds": train_seconds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
