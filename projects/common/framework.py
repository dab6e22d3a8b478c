"""What the framework actually ran on, seen from inside the process: devices and build.

The worker-side fingerprint sees the machine from outside; only the framework knows where it
placed the model and how it was built (CUDA, cuDNN). `describe(model)` returns the full record
(artifact `repro/framework.json`) and `to_tags(record)` the short `repro.sw.*` tags.
"""

from __future__ import annotations

import sys

import keras


def _variable_device(model) -> str:
    """The device of the model's first weight, as the backend names it."""
    if not model.weights:
        return "unknown"
    value = model.weights[0].value
    backend = keras.backend.backend()
    if backend == "jax":
        return ",".join(sorted(str(d) for d in value.devices()))
    return str(value.device)


def _tensorflow() -> dict:
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for g in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # noqa: BLE001 - details are best effort
            names.append(g.name)
    return {"version": tf.__version__, "cuda": build.get("cuda_version"), "cudnn": build.get("cudnn_version"),
            "is_cuda_build": bool(build.get("is_cuda_build")),
            "devices": [d.name for d in tf.config.list_logical_devices()], "gpus": names}


def _torch() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"version": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn,
            "is_cuda_build": torch.version.cuda is not None, "devices": ["cpu"] + [f"cuda:{i}" for i in range(len(gpus))],
            "gpus": gpus, "mkldnn": torch.backends.mkldnn.is_available()}


def _jax() -> dict:
    import jax
    import jaxlib

    devices = jax.devices()
    return {"version": jax.__version__, "jaxlib": getattr(jaxlib, "__version__", None), "backend": jax.default_backend(),
            "devices": [str(d) for d in devices],
            "gpus": [d.device_kind for d in devices if d.platform == "gpu"]}


def describe(model) -> dict:
    """The framework record for a built model."""
    backend = keras.backend.backend()
    info = {"tensorflow": _tensorflow, "torch": _torch, "jax": _jax}[backend]()
    device = _variable_device(model)
    gpu_name = None
    if backend == "torch" and device.startswith("cuda"):
        import torch

        gpu_name = torch.cuda.get_device_name(torch.device(device))
    elif info.get("gpus") and ("GPU" in device.upper() or "CUDA" in device.upper()):
        gpu_name = info["gpus"][0]
    return {
        "keras_backend": backend,
        "keras": keras.__version__,
        "model_device": device,
        "model_gpu": gpu_name,
        "build": info,
        "frameworks_loaded": sorted(m for m in ("tensorflow", "jax", "torch") if m in sys.modules),
    }


def to_tags(record: dict) -> dict[str, str]:
    """Short `repro.sw.*` tags: backend, the device the model is on, the framework build."""
    b = record["build"]
    build = f"{record['keras_backend']} {b.get('version')}"
    if b.get("is_cuda_build") or b.get("cuda"):
        build += f" cuda {b.get('cuda')} cudnn {b.get('cudnn')}"
    elif record["keras_backend"] == "jax":
        build += f" jaxlib {b.get('jaxlib')} {b.get('backend')}"
    else:
        build += " cpu-only"
    device = record["model_device"] + (f" ({record['model_gpu']})" if record.get("model_gpu") else "")
    tags = {
        "repro.sw.keras_backend": record["keras_backend"],
        "repro.sw.device": device,
        "repro.sw.framework_build": build,
        "repro.sw.frameworks_loaded": ",".join(record["frameworks_loaded"]),
    }
    return {k: v[:250] for k, v in tags.items()}
