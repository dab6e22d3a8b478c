#!/usr/bin/env bash
# Re-run the whole CPU study from scratch, with the tool alone:
#   bash analysis/cpu_study/run.sh
# Runs go to analysis/cpu_study/mlflow.db (experiment cpu-study); the report, figures, CSV and JSON
# made by `repro analyze` go to analysis/cpu_study/report/, and are logged to MLflow too.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
here=analysis/cpu_study
export MLFLOW_TRACKING_URI="sqlite:///$PWD/$here/mlflow.db" REPRO_HOME="$PWD/$here/.repro"
[[ "${1:-}" == "--keep" ]] || rm -f "$here/mlflow.db"
sweep() { repro-sweep --config-dir "$here/conf" +preset=cpu_study project_dir="$PWD" "$@"; }
# TensorFlow: oneDNN on and off (a TensorFlow switch)
sweep keras_backend=tensorflow onednn=true,false
# JAX and PyTorch (oneDNN off/on is not a factor there)
sweep keras_backend=jax,torch
# the seed as a factor, on the default TensorFlow settings
sweep keras_backend=tensorflow onednn=true op_determinism=true seed=2
repro analyze --sweep cpu-study --out "$here/report"
