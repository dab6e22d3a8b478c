"""What may be recorded: environment values from an allow-list, never anything credential-like.

Two guards: `env_allowed()` keeps only allow-listed names that do not look like credentials
(a user may extend the allow-list with `REPRO_FINGERPRINT_ENV=NAME,NAME`, but a credential-like
name is refused even then), and `redact()` walks a finished record and replaces any string that
contains the value of a credential-like variable of this process's environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Variables that steer numerics and determinism, grouped for the docs; only these are recorded.
DETERMINISM_ENV = (
    "PYTHONHASHSEED", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC", "TF_USE_CUDNN_AUTOTUNE",
    "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "TF_XLA_FLAGS", "XLA_FLAGS", "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION",
    "XLA_PYTHON_CLIENT_PREALLOCATE", "KERAS_BACKEND", "TF_GPU_ALLOCATOR", "TF_CPP_MIN_LOG_LEVEL",
)
THREAD_ENV = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
    "OMP_PROC_BIND", "OMP_PLACES", "KMP_AFFINITY", "KMP_BLOCKTIME",
)
ONEDNN_BLAS_ENV = (
    "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE",
    "DNNL_DEFAULT_FPMATH_MODE", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE",
    "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE",
)
DEVICE_ENV = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
ALLOWED_ENV = DETERMINISM_ENV + THREAD_ENV + ONEDNN_BLAS_ENV + DEVICE_ENV
USER_ALLOW_VAR = "REPRO_FINGERPRINT_ENV"

_CREDENTIAL_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL",
                     "AUTH", "COOKIE", "SESSION", "PRIVATE", "SIGNATURE", "CERT", "PROXY")
_CREDENTIAL_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCP_", "DATABRICKS_", "MLFLOW_TRACKING_",
                        "GITHUB_", "HF_", "HUGGING", "WANDB_", "X509", "SSH_", "GIT_", "PG", "MYSQL_")
REDACTED = "<redacted>"
_MIN_SECRET_LEN = 6  # shorter values (e.g. "1", "true") would redact innocent text


def looks_like_credential(name: str) -> bool:
    """True for names that may hold a secret (KEY, SECRET, TOKEN, PASSWORD, CREDENTIAL, AWS_*, …)."""
    up = name.upper()
    return any(w in up for w in _CREDENTIAL_WORDS) or up.startswith(_CREDENTIAL_PREFIXES)


def allowed_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The allow-list in force: the built-in names plus `$REPRO_FINGERPRINT_ENV`, credential-like names removed."""
    environ = os.environ if environ is None else environ
    extra = [n.strip() for n in environ.get(USER_ALLOW_VAR, "").split(",") if n.strip()]
    names = dict.fromkeys(ALLOWED_ENV + tuple(extra))
    return tuple(n for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) and not looks_like_credential(n))


def env_allowed(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Allow-listed environment variables that are set, with their values."""
    environ = os.environ if environ is None else environ
    return {n: environ[n] for n in allowed_names(environ) if n in environ}


def secret_values(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of this environment's secret-named variables (KEY, SECRET, TOKEN, PASSWORD, …; long
    enough to be told apart). Prefix-only matches such as AWS_REGION are refused by the allow-list
    but their values are not secrets, so they are not redacted from text."""
    environ = os.environ if environ is None else environ
    return {v for k, v in environ.items()
            if any(w in k.upper() for w in _CREDENTIAL_WORDS) and len(v) >= _MIN_SECRET_LEN}


def redact(obj: object, secrets: set[str]) -> object:
    """A copy of `obj` where every string (key or value) holding one of `secrets` is replaced."""
    if not secrets:
        return obj
    if isinstance(obj, str):
        return REDACTED if any(s in obj for s in secrets) else obj
    if isinstance(obj, Mapping):
        return {redact(k, secrets): redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, secrets) for v in obj]
    return obj
