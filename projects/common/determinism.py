"""Determinism factors shared by the examples, applied in the order the frameworks need them.

Two steps, because some switches only work if they are set before a framework is imported:

1. `configure(args)` runs before keras (or any framework) is imported: it sets `KERAS_BACKEND`,
   `TF_ENABLE_ONEDNN_OPTS`, `XLA_FLAGS`, `CUBLAS_WORKSPACE_CONFIG` and the thread variables.
2. `apply(args)` runs right after `import keras`: for the jax and torch backends it first tells
   Keras that TensorFlow is absent (as on a GPU machine without it; Keras would otherwise import it
   to seed it), then seeds, thread pools, op determinism, TF32, oneDNN (torch's mkldnn switch).

Both return `repro.det.*` tags naming every setting in force; `jit_compile(args)` gives the value
for `model.compile`, whose resolved value the examples log as `repro.det.xla`.
"""

from __future__ import annotations

import argparse
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
XLA_CHOICES = ("auto", "true", "false")
CUBLAS_WORKSPACE = ":4096:8"
JAX_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def str2bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{v}'")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The determinism factors every example takes (the MLproject declares the same, typed)."""
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--op_determinism", type=str2bool, default=True,
                   help="TF enable_op_determinism; torch use_deterministic_algorithms; JAX --xla_gpu_deterministic_ops")
    p.add_argument("--threads", type=int, default=0, help="intra- and inter-op threads; 0 = framework default")
    p.add_argument("--tf32", type=str2bool, default=True, help="allow TensorFloat-32 matmuls/convolutions on GPUs that have it")
    p.add_argument("--onednn", type=str2bool, default=True, help="oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS; torch mkldnn)")
    p.add_argument("--xla", choices=XLA_CHOICES, default="auto", help="model.compile(jit_compile=...); auto = Keras' choice")
    p.add_argument("--keras_backend", choices=BACKENDS, default="tensorflow")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def configure(args: argparse.Namespace) -> dict[str, str]:
    """Set what must be set before any framework import; return the settings as tags.

    Raises RuntimeError if a framework is already imported (the settings would come too late).
    """
    early = [m for m in FRAMEWORKS if m in sys.modules]
    if early:
        raise RuntimeError(f"determinism.configure must run before importing {', '.join(early)}")
    if args.threads < 0:
        raise ValueError(f"threads must be 0 (framework default) or more, got {args.threads}")
    backend = args.keras_backend
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYTHONHASHSEED"] = str(args.seed)  # for child processes; this one's hash seed is fixed at start
    tags = {
        "repro.det.keras_backend": backend,
        "repro.det.seed": str(args.seed),
        "repro.det.op_determinism": _flag(args.op_determinism),
        "repro.det.threads": str(args.threads),
        "repro.det.tf32": _flag(args.tf32),
        "repro.det.onednn": _flag(args.onednn) if backend != "jax" else "n/a",
    }
    if args.threads > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ[var] = str(args.threads)
    if backend == "tensorflow":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn else "0"
        if not args.tf32:
            os.environ["NVIDIA_TF32_OVERRIDE"] = "0"
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "").split()
        if args.op_determinism and JAX_DETERMINISTIC_FLAG not in flags:
            flags.append(JAX_DETERMINISTIC_FLAG)
        if args.threads > 0:
            flags = [f for f in flags if not f.startswith(("--xla_cpu_multi_thread_eigen", "intra_op_parallelism_threads"))]
            flags += [f"--xla_cpu_multi_thread_eigen={_flag(args.threads > 1)}", f"intra_op_parallelism_threads={args.threads}"]
        if flags:
            os.environ["XLA_FLAGS"] = " ".join(flags)
    if backend == "torch" and args.op_determinism:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    for var, tag in (("XLA_FLAGS", "xla_flags"), ("CUBLAS_WORKSPACE_CONFIG", "cublas_workspace_config"),
                     ("TF_ENABLE_ONEDNN_OPTS", "tf_enable_onednn_opts"), ("NVIDIA_TF32_OVERRIDE", "nvidia_tf32_override"),
                     ("TF_DETERMINISTIC_OPS", "tf_deterministic_ops")):  # the last only if the caller set it
        if os.environ.get(var):
            tags[f"repro.det.env.{tag}"] = os.environ[var]
    return tags


def _seed(seed: int, backend: str) -> None:
    """Python, NumPy, the backend and Keras' global SeedGenerator (without touching TensorFlow off its backend)."""
    import keras

    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    try:  # set_random_seed would import TF (where installed) only to seed it
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False
    except ImportError:  # another Keras layout: TF may then be loaded; repro.sw.frameworks_loaded says so
        pass
    keras.utils.set_random_seed(seed)
    if backend == "torch":
        import torch

        torch.cuda.manual_seed_all(seed)


def apply(args: argparse.Namespace) -> dict[str, str]:
    """After `import keras`: seed every generator, set thread pools, op determinism, TF32, oneDNN."""
    backend = args.keras_backend
    _seed(args.seed, backend)
    tags: dict[str, str] = {}
    if backend == "tensorflow":
        import tensorflow as tf

        if args.threads > 0:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        if args.op_determinism:
            tf.config.experimental.enable_op_determinism()
        tf.config.experimental.enable_tensor_float_32_execution(args.tf32)
        tags["repro.det.tf.tensor_float_32"] = _flag(tf.config.experimental.tensor_float_32_execution_enabled())
        tags["repro.det.tf.intra_op_threads"] = str(tf.config.threading.get_intra_op_parallelism_threads())
    elif backend == "torch":
        import torch

        if args.threads > 0:
            torch.set_num_threads(args.threads)
            torch.set_num_interop_threads(args.threads)
        torch.use_deterministic_algorithms(args.op_determinism)
        torch.backends.cudnn.deterministic = args.op_determinism
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.mkldnn.enabled = args.onednn
        tags.update({
            "repro.det.torch.deterministic_algorithms": _flag(torch.are_deterministic_algorithms_enabled()),
            "repro.det.torch.cudnn_benchmark": _flag(torch.backends.cudnn.benchmark),
            "repro.det.torch.num_threads": str(torch.get_num_threads()),
            "repro.det.torch.num_interop_threads": str(torch.get_num_interop_threads()),
            "repro.det.torch.mkldnn": _flag(torch.backends.mkldnn.enabled),
        })
    else:
        import jax

        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if args.tf32 else "float32")
        tags["repro.det.jax.matmul_precision"] = str(jax.config.jax_default_matmul_precision)
    return tags


def jit_compile(args: argparse.Namespace) -> bool | str:
    """The `jit_compile` argument for `model.compile` (auto, True or False)."""
    return {"auto": "auto", "true": True, "false": False}[args.xla]


def xla_tag(model) -> dict[str, str]:
    """The XLA setting Keras resolved for a compiled model."""
    return {"repro.det.xla": _flag(bool(model.jit_compile))}
