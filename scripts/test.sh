#!/usr/bin/env bash
# Set everything up and run the test suite: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system --oldest-mlflow
export MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2
# With arguments: only those tests, in the main environment.
(($#)) && exec .venv/bin/python -m pytest "$@"
rc=0
.venv/bin/python -m pytest || rc=$?
# The worker side and the analysis again under the oldest MLflow supported (pyproject: mlflow>=3.10): the local
# store, the replay (LoggedModels included), the local-first tracking and registry stores with the server away.
echo "== the same worker-side and analysis tests under $(.venv-mlflow-oldest/bin/python -c 'import mlflow; print("MLflow", mlflow.__version__)')"
.venv-mlflow-oldest/bin/python -m pytest -p no:cacheprovider --durations=5 -m "not slow" \
  tests/test_mlflow_sql.py tests/test_offline.py tests/mirror/test_local_first.py tests/mirror/test_replay.py tests/mirror/test_localstore.py \
  tests/local/test_registry.py::test_registrations_wait_for_the_server_and_arrive_once \
  tests/analysis/test_load.py tests/analysis/test_stores.py tests/analysis/test_stats.py tests/analysis/test_baseline.py || rc=$?
exit $rc
