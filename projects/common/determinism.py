"""Determinism settings, applied in the order the frameworks need them.

`configure()` runs before any framework import (environment variables), `seed_and_threads()`
after it. Every setting in force is returned as `repro.det.*` tags.
"""

from __future__ import annotations

import argparse
import os


def str2bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{v}'")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The determinism factors every example takes."""
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--op_determinism", type=str2bool, default=True)
    p.add_argument("--threads", type=int, default=0, help="intra- and inter-op threads; 0 = framework default")


def configure(args: argparse.Namespace) -> dict[str, str]:
    """Set what must be set before a framework is imported; return the settings as tags."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYTHONHASHSEED"] = str(args.seed)
    if args.threads > 0:
        for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ[var] = str(args.threads)
    return {
        "repro.det.seed": str(args.seed),
        "repro.det.op_determinism": str(args.op_determinism).lower(),
        "repro.det.threads": str(args.threads),
    }


def seed_and_threads(args: argparse.Namespace) -> None:
    """After importing keras: seed every generator, set thread pools and op determinism."""
    import keras
    import tensorflow as tf

    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    if args.op_determinism:
        tf.config.experimental.enable_op_determinism()
