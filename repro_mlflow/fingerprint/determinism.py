"""Determinism settings in force: allow-listed environment variables, and the settings of
frameworks this process has already imported (never imports one)."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from .safety import env_allowed


def _call(f, *a):
    try:
        return f(*a)
    except Exception:  # noqa: BLE001
        return None


def in_process(modules: Mapping[str, object] | None = None) -> dict:
    """Settings of already-imported TensorFlow, PyTorch and JAX (op determinism, TF32, threads)."""
    modules = sys.modules if modules is None else modules
    out: dict = {}
    tf = modules.get("tensorflow")
    if tf is not None and hasattr(tf, "config"):
        out["tensorflow"] = {
            "op_determinism": _call(lambda: tf.config.experimental.is_op_determinism_enabled()),
            "tf32": _call(lambda: tf.config.experimental.tensor_float_32_execution_enabled()),
            "intra_op_threads": _call(lambda: tf.config.threading.get_intra_op_parallelism_threads()),
            "inter_op_threads": _call(lambda: tf.config.threading.get_inter_op_parallelism_threads()),
        }
    torch = modules.get("torch")
    if torch is not None and hasattr(torch, "backends"):
        out["torch"] = {
            "deterministic_algorithms": _call(lambda: torch.are_deterministic_algorithms_enabled()),
            "cudnn_deterministic": _call(lambda: torch.backends.cudnn.deterministic),
            "cudnn_benchmark": _call(lambda: torch.backends.cudnn.benchmark),
            "matmul_tf32": _call(lambda: torch.backends.cuda.matmul.allow_tf32),
            "cudnn_tf32": _call(lambda: torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": _call(lambda: torch.get_float32_matmul_precision()),
            "threads": _call(lambda: torch.get_num_threads()),
        }
    jax = modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        out["jax"] = {
            "enable_x64": _call(lambda: bool(jax.config.jax_enable_x64)),
            "default_matmul_precision": _call(lambda: jax.config.jax_default_matmul_precision),
        }
    return {k: {n: v for n, v in d.items() if v is not None} for k, d in out.items()}


def probe_determinism(environ: Mapping[str, str] | None = None,
                      modules: Mapping[str, object] | None = None) -> dict:
    """{"env": allow-listed variables that are set, "frameworks": in-process settings}."""
    return {"env": env_allowed(environ), "frameworks": in_process(modules)}
