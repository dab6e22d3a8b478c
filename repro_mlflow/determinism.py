"""Determinism switches for any training script, with `repro.det.*` tags that say what is in force.

    from repro_mlflow import determinism
    determinism.configure(seed=1, threads=1, framework="torch")   # first thing, before training

`configure` sets what must be set before a framework starts (environment variables, the
process's CPU affinity), imports the framework, then seeds every generator and sets thread pools,
op determinism, TF32 and oneDNN. It returns the `repro.det.*` tags, read back from the framework
and the OS where they can tell (`evidence.log_evidence` logs them). Frameworks: `tensorflow`,
`torch`, `jax`, `numpy` (no framework), and `keras` with `keras_backend` tensorflow, jax or torch.

`threads=N` (0 = the framework's default) confines every thread of the process to N of the CPUs it
may use (`affinity.pin`: the threads already running too, NumPy's BLAS pool among them), sizes the
BLAS/OpenMP pools loaded in the process to N (threadpoolctl) and each framework's own pools (TF
intra/inter-op, torch intra/inter-op; XLA:CPU sizes its pool from the affinity), then reads back
what holds: a thread or pool left with other CPUs or another size makes `configure` refuse.
`repro.det.threads` is the number of CPUs granted (0: not limited); `repro.affinity.cpus` lists the
CPUs the process's threads may run on (read back from every thread), `repro.affinity.count` counts
them, `repro.affinity.pools` gives each BLAS/OpenMP pool's size read back; with a CPU slot
(`REPRO_CPU_SLOT=k/m`, set by repro-local for a `parallel: m` batch) run k gets CPUs of its own,
`repro.affinity.slot` says which slot and `repro.affinity.shared` whether other slots share its CPUs.
(Not `repro.det.*`: they differ per machine, and every `repro.det.*` tag is part of a run's config
in `repro analyze`.)

Combinations that cannot be honoured are refused (`refusal`, `DeterminismError`), never dropped:
Keras on TensorFlow turns XLA off when op determinism is on, so `xla=true` with
`op_determinism=true` is refused; XLA refuses MaxPool's gradient (select-and-scatter) under
`--xla_gpu_deterministic_ops`, so JAX with op determinism on a GPU is refused for an entry point
that declares `ops: [max_pool]`; plain PyTorch runs eagerly (`xla=true` refused), JAX always
compiles (`xla=false` refused), NumPy has neither XLA nor TF32. `tf32=None` (the default) leaves
each framework's own TF32 setting; the setting in force is read back into the tags.
This module imports no framework at import time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import affinity

__all__ = ["Settings", "DeterminismError", "configure", "prepare", "apply", "refusal", "current_tags",
           "add_arguments", "jit_compile", "xla_tag", "FRAMEWORKS", "KERAS_BACKENDS"]

KERAS_BACKENDS = ("tensorflow", "jax", "torch")
FRAMEWORKS = ("keras", "tensorflow", "torch", "jax", "numpy")
XLA_CHOICES = ("auto", "true", "false")
CUBLAS_WORKSPACE = ":4096:8"
JAX_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
LOADED = ("torch", "tensorflow", "jax")  # the frameworks `configure` can tell are imported
EARLY = ("tensorflow", "keras", "jax")  # need their settings before import (env, XLA_FLAGS, backend choice)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS")

AFFINITY_TAG = "repro.affinity.cpus"  # the CPUs the process may run on, as Linux lists them: 0-3,8
AFFINITY_COUNT_TAG = "repro.affinity.count"
AFFINITY_POOLS_TAG = "repro.affinity.pools"  # each BLAS/OpenMP pool's size, read back: libgomp=1,libscipy_openblas=1
AFFINITY_SLOT_TAG = "repro.affinity.slot"  # k/m: this run's CPU slot among the m runs of its batch running at once
AFFINITY_SHARED_TAG = "repro.affinity.shared"  # true: other slots get some of this run's CPUs too

_TAGS: dict[str, str] = {}
_CPUS: list[list[int] | None] = [None]  # the CPUs `prepare` chose, for `apply` to hold and read back


class DeterminismError(ValueError):
    """A setting that cannot be honoured (one line, says why)."""


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _boolean(name: str, value: Any) -> bool:
    """A switch given as a bool, 0/1 or one of true/false/1/0/yes/no/on/off; anything else refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise DeterminismError(f"{name} must be true or false, got {value!r}")


def _integer(name: str, value: Any) -> int:
    """An integer given as an int or its digits; a bool, a float with a fraction, None or text refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise DeterminismError(f"{name} must be an integer, got {value!r}")


@dataclass(frozen=True)
class Settings:
    """The determinism factors of one run (the examples' MLproject parameters of the same names)."""

    seed: int = 1
    op_determinism: bool = True
    threads: int = 0  # 0 = the framework's default
    tf32: bool | None = None  # None = the framework's own setting (read back into the tags)
    onednn: bool = True
    xla: str = "auto"  # auto | true | false
    framework: str = "numpy"  # keras | tensorflow | torch | jax | numpy
    keras_backend: str | None = None  # with framework=keras

    def __post_init__(self) -> None:
        # a string or number is read as what it says, never by truthiness ("false" is not True)
        object.__setattr__(self, "seed", _integer("seed", self.seed))
        object.__setattr__(self, "threads", _integer("threads", self.threads))
        for name in ("op_determinism", "onednn", "tf32"):
            value = getattr(self, name)
            if not (name == "tf32" and value is None):
                object.__setattr__(self, name, _boolean(name, value))
        if self.framework not in FRAMEWORKS:
            raise DeterminismError(f"unknown framework '{self.framework}' (choose from: {', '.join(FRAMEWORKS)})")
        if self.framework == "keras" and self.keras_backend not in KERAS_BACKENDS:
            raise DeterminismError(f"keras_backend must be one of {', '.join(KERAS_BACKENDS)}, got {self.keras_backend!r}")
        if self.threads < 0:
            raise DeterminismError(f"threads must be 0 (framework default) or more, got {self.threads}")
        if str(self.xla) not in XLA_CHOICES:
            raise DeterminismError(f"xla must be one of {', '.join(XLA_CHOICES)}, got {self.xla!r}")
        why = refusal({"xla": str(self.xla), "op_determinism": _flag(self.op_determinism),
                       "framework": self.framework, "keras_backend": self.keras_backend}, gpu=False)
        if why:
            raise DeterminismError(why)
        if self.framework == "numpy" and self.tf32 is not None:
            raise DeterminismError(f"tf32={_flag(self.tf32)} cannot be honoured with framework=numpy: NumPy has no "
                                   "TF32; leave tf32 unset")

    @property
    def engine(self) -> str:
        """The framework that runs the ops: the Keras backend, or the framework itself."""
        return self.keras_backend if self.framework == "keras" else self.framework

    @classmethod
    def from_args(cls, args: argparse.Namespace, framework: str = "keras") -> Settings:
        """From the arguments `add_arguments` declares."""
        return cls(args.seed, args.op_determinism, args.threads, args.tf32, args.onednn, args.xla, framework,
                   getattr(args, "keras_backend", None) if framework == "keras" else None)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _true(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def refusal(params: Mapping[str, object], *, gpu: bool, ops: Iterable[str] = ()) -> str | None:
    """Why this combination of factors cannot be honoured (one line), or None if it can.

    params: the factor values of a run (`keras_backend` or `framework`, `xla`, `op_determinism`);
    gpu: whether the run gets a GPU; ops: what the entry point declares its model uses (`max_pool`).
    Called by `configure`, by repro-sweep while planning and by the backends before any run exists.
    """
    engine = str(params.get("keras_backend") or params.get("framework") or "")
    plain = "" if params.get("keras_backend") else str(params.get("framework") or "")  # a framework without Keras
    opdet = _true(params.get("op_determinism", "false"))
    xla = str(params.get("xla", "auto")).lower()
    if engine == "tensorflow" and xla == "true" and opdet:
        return ("xla=true with op_determinism=true cannot be honoured on TensorFlow: Keras turns XLA off when op "
                "determinism is on; use xla=auto or xla=false, or op_determinism=false")
    if plain == "torch" and xla == "true":
        return ("xla=true cannot be honoured with framework=torch: PyTorch runs eagerly (torch.compile is the "
                "script's own call); use xla=auto, or framework=keras with keras_backend=torch")
    if plain == "jax" and xla == "false":
        return ("xla=false cannot be honoured with framework=jax: JAX always compiles with XLA; use xla=auto, or "
                "framework=keras with keras_backend=jax (Keras can run it eagerly)")
    if plain == "numpy" and xla != "auto":
        return f"xla={xla} cannot be honoured with framework=numpy: NumPy has no XLA; use xla=auto"
    if engine == "jax" and opdet and gpu and "max_pool" in set(ops):
        return ("op_determinism=true with JAX on a GPU cannot run this model: XLA refuses MaxPool's gradient "
                "(select-and-scatter) under --xla_gpu_deterministic_ops; use op_determinism=false, another "
                "keras_backend, or a CPU target")
    return None


def str2bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{v}'")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The determinism factors as command-line arguments (the examples' MLproject declares the same, typed)."""
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--op_determinism", type=str2bool, default=True,
                   help="TF enable_op_determinism; torch use_deterministic_algorithms; JAX --xla_gpu_deterministic_ops")
    p.add_argument("--threads", type=int, default=0, help="CPUs (affinity) and intra/inter-op threads; 0 = framework default")
    p.add_argument("--tf32", type=str2bool, default=None,
                   help="allow TensorFloat-32 matmuls/convolutions on GPUs that have it; unset = the framework's own setting")
    p.add_argument("--onednn", type=str2bool, default=True, help="oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS; torch mkldnn)")
    p.add_argument("--xla", choices=XLA_CHOICES, default="auto", help="XLA compilation (Keras jit_compile); auto = the framework's choice")
    p.add_argument("--keras_backend", choices=KERAS_BACKENDS, default="tensorflow")


def _cpu_list(cpus: Iterable[int]) -> str:
    """Compact CPU list as Linux writes it: 0-3,8."""
    return affinity.cpu_list(cpus)


def _slot() -> affinity.Slot | None:
    try:
        return affinity.parse_slot(os.environ.get(affinity.SLOT_VAR))
    except ValueError as e:
        raise DeterminismError(str(e)) from None


def _confine(threads: int, slot: affinity.Slot | None = None) -> tuple[list[int], bool] | None:
    """Bind every thread of this process to `threads` of its allowed CPUs (0: leave them), in `slot`.

    Returns the CPUs chosen and whether other slots share them (None where the OS has no affinity).
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus, shared = affinity.choose(os.sched_getaffinity(0), threads, slot)
    if threads > 0:
        affinity.pin(cpus)
    return cpus, shared


def _read_back(s: Settings, cpus: list[int] | None) -> dict[str, str]:
    """Bind and size again (the framework's import may have started threads and loaded pools), then
    read back every thread's CPUs and every pool's size; refuse what does not hold."""
    tags: dict[str, str] = {}
    if cpus is None:
        return tags
    if s.threads > 0:
        affinity.pin(cpus)
        affinity.limit_pools(len(cpus))
    held = affinity.in_force()
    if s.threads > 0 and held != cpus:
        raise DeterminismError(f"threads={s.threads} cannot be honoured: a thread of this process keeps CPUs "
                               f"{_cpu_list(set(held) - set(cpus))} (asked for {_cpu_list(cpus)})")
    found = affinity.pools()
    wrong = [f"{name}={n}" for name, n in found if s.threads > 0 and n != len(cpus)]
    if wrong:
        raise DeterminismError(f"threads={s.threads} cannot be honoured: the thread pool {', '.join(wrong)} "
                               f"cannot be resized to {len(cpus)}")
    tags[AFFINITY_TAG] = _cpu_list(held)
    tags[AFFINITY_COUNT_TAG] = str(len(held))
    tags[AFFINITY_POOLS_TAG] = affinity.pools_tag(found)
    return tags


def prepare(s: Settings) -> dict[str, str]:
    """What must happen before the framework is imported: environment variables and CPU affinity.

    Raises DeterminismError if TensorFlow, Keras or JAX is already imported (too late for them).
    """
    late = [m for m in EARLY if m in sys.modules and (m == s.engine or (m == "keras" and s.framework == "keras"))]
    if late:
        raise DeterminismError(f"determinism.configure must run before importing {', '.join(late)}")
    slot = _slot()
    confined = _confine(s.threads, slot)
    cpus = confined[0] if confined else None
    _CPUS[0] = cpus
    n = len(cpus) if cpus is not None else s.threads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYTHONHASHSEED"] = str(s.seed)  # for child processes; this one's hash seed is fixed at start
    tags = {
        "repro.det.framework": s.framework,
        "repro.det.seed": str(s.seed),
        "repro.det.op_determinism": _flag(s.op_determinism),
        "repro.det.threads": str(n) if s.threads > 0 else "0",  # the CPUs granted (fewer if the machine has fewer)
        "repro.det.threads.requested": str(s.threads),
        "repro.det.tf32": "default" if s.tf32 is None else _flag(s.tf32),  # asked; read back per framework
        "repro.det.onednn": _flag(s.onednn) if s.engine in ("tensorflow", "torch") else "n/a",
    }
    if cpus is not None:  # which CPUs differs per machine: not a repro.det.* tag (those make the config)
        tags[AFFINITY_TAG] = _cpu_list(cpus)  # read back again, every thread, in `apply`
        tags[AFFINITY_COUNT_TAG] = str(len(cpus))
        if slot is not None:
            tags[AFFINITY_SLOT_TAG] = str(slot)
            tags[AFFINITY_SHARED_TAG] = _flag(confined[1])
    if s.framework == "keras":
        os.environ["KERAS_BACKEND"] = s.keras_backend
        tags["repro.det.keras_backend"] = s.keras_backend
    if s.threads > 0:
        for var in THREAD_VARS:
            os.environ[var] = str(n)
    if s.engine == "tensorflow":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if s.onednn else "0"
        if s.tf32 is False:
            os.environ["NVIDIA_TF32_OVERRIDE"] = "0"
    if s.engine == "jax":
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
                 if not f.startswith("intra_op_parallelism_threads")]  # not an XLA flag: XLA aborts on it
        if s.op_determinism and JAX_DETERMINISTIC_FLAG not in flags:
            flags.append(JAX_DETERMINISTIC_FLAG)
        if flags:
            os.environ["XLA_FLAGS"] = " ".join(flags)
        else:
            os.environ.pop("XLA_FLAGS", None)
    if s.engine == "torch" and s.op_determinism:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    for var, tag in (("XLA_FLAGS", "xla_flags"), ("CUBLAS_WORKSPACE_CONFIG", "cublas_workspace_config"),
                     ("TF_ENABLE_ONEDNN_OPTS", "tf_enable_onednn_opts"), ("NVIDIA_TF32_OVERRIDE", "nvidia_tf32_override"),
                     ("TF_DETERMINISTIC_OPS", "tf_deterministic_ops")):  # the last only if the caller set it
        if os.environ.get(var):
            tags[f"repro.det.env.{tag}"] = os.environ[var]
    return tags


def _seed_keras(seed: int, backend: str) -> None:
    """Python, NumPy, the backend and Keras' global SeedGenerator (without touching TensorFlow off its backend)."""
    import keras

    if backend != "tensorflow":
        try:  # set_random_seed would import TF (where installed) only to seed it
            from keras.src.utils import module_utils

            module_utils.tensorflow._available = False
        except ImportError:  # another Keras layout: TF may then be loaded; repro.sw.frameworks_loaded says so
            pass
    keras.utils.set_random_seed(seed)
    if backend == "torch":
        import torch

        torch.cuda.manual_seed_all(seed)


def _seed(s: Settings) -> None:
    import numpy as np

    random.seed(s.seed)
    np.random.seed(s.seed)
    if s.framework == "keras":
        _seed_keras(s.seed, s.keras_backend)
    elif s.framework == "tensorflow":
        import tensorflow as tf

        tf.random.set_seed(s.seed)
    elif s.framework == "torch":
        import torch

        torch.manual_seed(s.seed)
        torch.cuda.manual_seed_all(s.seed)
    # JAX has no global generator: keys are explicit (jax.random.key(seed)); NumPy alone: seeded above


def _tensorflow(s: Settings, n: int) -> dict[str, str]:
    import tensorflow as tf

    if s.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    if s.op_determinism:
        tf.config.experimental.enable_op_determinism()
    if s.tf32 is not None:
        tf.config.experimental.enable_tensor_float_32_execution(s.tf32)
    if s.framework == "tensorflow" and s.xla != "auto":
        tf.config.optimizer.set_jit(s.xla == "true")
    tags = {"repro.det.tf.tensor_float_32": _flag(tf.config.experimental.tensor_float_32_execution_enabled()),
            "repro.det.tf.intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads()),  # 0: default
            "repro.det.tf.inter_op_threads": str(tf.config.threading.get_inter_op_parallelism_threads())}
    if s.framework == "tensorflow":
        tags["repro.det.xla"] = _flag(bool(tf.config.optimizer.get_jit()))
    return tags


def _torch(s: Settings, n: int) -> dict[str, str]:
    import torch

    if s.threads > 0:
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # only settable before the first inter-op work; the tag shows what is in force
            pass
    torch.use_deterministic_algorithms(s.op_determinism)
    torch.backends.cudnn.deterministic = s.op_determinism
    torch.backends.cudnn.benchmark = False
    if s.tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = s.tf32
        torch.backends.cudnn.allow_tf32 = s.tf32
    torch.backends.mkldnn.enabled = s.onednn
    tags = {
        "repro.det.torch.deterministic_algorithms": _flag(torch.are_deterministic_algorithms_enabled()),
        "repro.det.torch.cudnn_benchmark": _flag(torch.backends.cudnn.benchmark),
        "repro.det.torch.num_threads": str(torch.get_num_threads()),
        "repro.det.torch.num_interop_threads": str(torch.get_num_interop_threads()),
        "repro.det.torch.mkldnn": _flag(torch.backends.mkldnn.enabled),
        "repro.det.torch.matmul_tf32": _flag(torch.backends.cuda.matmul.allow_tf32),
        "repro.det.torch.cudnn_tf32": _flag(torch.backends.cudnn.allow_tf32),
    }
    if s.framework == "torch":
        tags["repro.det.xla"] = "false"  # eager PyTorch; torch.compile is the script's own choice
    return tags


def _jax(s: Settings, n: int) -> dict[str, str]:
    import jax

    if s.tf32 is not None:
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if s.tf32 else "float32")
    precision = jax.config.jax_default_matmul_precision
    tags = {"repro.det.jax.matmul_precision": "default" if precision is None else str(precision),
            # XLA:CPU sizes its pool from the CPUs the thread creating its client may use: the affinity
            "repro.det.jax.cpu_threads": str(n if s.threads else 0)}
    if s.framework == "jax":
        tags["repro.det.xla"] = "true"  # JAX always compiles with XLA
    return tags


def apply(s: Settings) -> dict[str, str]:
    """After `prepare`: import the framework, seed every generator, set pools, op determinism, TF32, oneDNN;
    then hold every thread and pool to the CPUs `prepare` chose and read back what is in force."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else s.threads
    if s.framework == "keras":
        import keras  # noqa: F401  (after KERAS_BACKEND is set)
    _seed(s)
    engine = {"tensorflow": _tensorflow, "torch": _torch, "jax": _jax}.get(s.engine)
    tags = engine(s, n) if engine else {}
    tags.update(_read_back(s, _CPUS[0]))
    return tags


def _framework(keras_backend: str | None) -> str:
    """The framework `configure` was not told: keras with a backend, else the one imported, else refuse."""
    if keras_backend:
        return "keras"
    loaded = [m for m in LOADED if m in sys.modules]
    if len(loaded) == 1:
        return loaded[0]
    which = "none of " + ", ".join(LOADED) + " is" if not loaded else " and ".join(loaded) + " are"
    raise DeterminismError(f"configure() needs framework=: {which} imported (choose from: {', '.join(FRAMEWORKS)})")


def configure(seed: int = 1, *, op_determinism: bool = True, threads: int = 0, tf32: bool | None = None,
              onednn: bool = True, xla: str = "auto", framework: str | None = None, keras_backend: str | None = None,
              settings: Settings | None = None) -> dict[str, str]:
    """Apply the determinism settings to this process; return (and remember for `log_evidence`) the `repro.det.*` tags.

    framework: keras | tensorflow | torch | jax | numpy; default: keras if `keras_backend` is given,
    else the one framework among torch, tensorflow, jax already imported (none or several: refused).
    tf32: None leaves each framework's own setting. Raises DeterminismError (one line) for a setting
    that cannot be honoured or comes too late.
    """
    if settings is None:
        if framework is None:
            framework = _framework(keras_backend)
        settings = Settings(seed, op_determinism, threads, tf32, onednn, str(xla).lower() if isinstance(xla, bool) else xla,
                            framework, keras_backend)
    tags = prepare(settings)
    tags.update(apply(settings))
    _TAGS.clear()
    _TAGS.update(tags)
    return tags


def current_tags() -> dict[str, str]:
    """The tags of the last `configure` in this process (empty if none ran), plus any added by `xla_tag`."""
    return dict(_TAGS)


def jit_compile(s: Settings) -> bool | str:
    """The `jit_compile` argument for Keras' `model.compile` (auto, True or False)."""
    return {"auto": "auto", "true": True, "false": False}[s.xla]


def xla_tag(model) -> dict[str, str]:
    """The XLA setting Keras resolved for a compiled model (also remembered for `log_evidence`)."""
    tag = {"repro.det.xla": _flag(bool(model.jit_compile))}
    _TAGS.update(tag)
    return tag
