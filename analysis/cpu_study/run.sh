#!/usr/bin/env bash
# Re-run the whole CPU study from scratch, with the tool alone:
#   bash analysis/cpu_study/run.sh [--keep] [--out DIR]
# Runs go to analysis/cpu_study/mlflow.db (experiment cpu-study; --keep adds to it instead of
# starting afresh); the report, figures, CSV and JSON made by `repro analyze` go to DIR (default
# analysis/cpu_study/report/), and are logged to MLflow too; DIR_by_threads/ and
# DIR_by_op_determinism/ hold the same runs analysed with that setting as the environment (and DIR_by_keras_backend/). With
# --out elsewhere, the report is also checked against the committed one (`repro analyze --baseline`).
set -euo pipefail
keep=0 out=analysis/cpu_study/report
while (($#)); do
  case "$1" in
    --keep) keep=1 ;;
    --out) out="$2"; shift ;;
    *) echo "usage: $0 [--keep] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
here=analysis/cpu_study
export MLFLOW_TRACKING_URI="sqlite:///$PWD/$here/mlflow.db" REPRO_HOME="$PWD/$here/.repro"
((keep)) || rm -f "$here/mlflow.db"
sweep() { repro-sweep --config-dir "$here/conf" +preset=cpu_study project_dir="$PWD" "$@"; }
# TensorFlow: oneDNN on and off (a TensorFlow switch)
sweep keras_backend=tensorflow onednn=true,false
# JAX and PyTorch (oneDNN off/on is not a factor there)
sweep keras_backend=jax,torch
# the seed as a factor, on the default TensorFlow settings
sweep keras_backend=tensorflow onednn=true op_determinism=true seed=2
if [[ "$out" -ef "$here/report" || ! -d "$here/report" ]]; then
  repro analyze --sweep cpu-study --out "$out"
else
  repro analyze --sweep cpu-study --out "$out" --baseline "$here/report"
fi
# one setting's values as the environments: report_by_threads/, report_by_op_determinism/, report_by_keras_backend/
for f in threads op_determinism keras_backend; do
  repro analyze --sweep cpu-study --by "params.$f" --no-log --out "${out%/}_by_$f" > /dev/null
done
