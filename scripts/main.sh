#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default (repro-local + sqlite:///mlflow.db):
# a small sweep of the three examples (12 runs on bundled data), then the analysis of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
repro-sweep +preset=demo "$@"
repro analyze --sweep demo --out repro-analysis-demo
cat <<MSG

Done. Where to look:
  report      repro-analysis-demo/report.html   (also logged to MLflow as the run "analysis demo")
  runs        repro status --sweep demo
  browse      mlflow ui   then http://127.0.0.1:5000, experiment "repro"
              filter e.g.  tags."repro.sweep" = "demo"
MSG
