#!/usr/bin/env bash
# Set everything up and run the test suite: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
export MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest "$@"
