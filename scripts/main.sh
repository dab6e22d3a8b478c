#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default (repro-local + sqlite:///mlflow.db):
# MNIST on this machine under three Keras backends x 2 repeats (6 runs on bundled real digits), then
# the analysis of it with the backend as the environment: does the result hold across backends?
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
repro-sweep +preset=demo "$@"
out=repro-analysis-demo
repro analyze --sweep demo --by params.keras_backend --out "$out"
echo
echo "Verdict (environment = Keras backend):"
python - "$out/analysis.json" <<'PY'
import json, sys
for ex in json.load(open(sys.argv[1]))["examples"]:
    print(f"  {ex['example']}:")
    for line in ex["verdict"]["lines"]:
        print(f"    {line}")
PY
cat <<MSG

Where to look:
  report      $out/report.html   (also logged to MLflow as the run "analysis demo")
  runs        repro status --sweep demo
  browse      mlflow ui   then http://127.0.0.1:5000, experiment "repro"
              filter e.g.  tags."repro.sweep" = "demo"
MSG
