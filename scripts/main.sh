#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default (repro-local + sqlite:///mlflow.db).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
exec python -m repro_mlflow.demo "$@"
