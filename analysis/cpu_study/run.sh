#!/usr/bin/env bash
# Re-run the whole CPU study from scratch, with the tool alone:
#   bash analysis/cpu_study/run.sh [--keep] [--out DIR]
# 300 runs, two at a time (PyTorch's two-thread ones one at a time): about 75 minutes on an idle
# 2-core machine (README, "The conf now"). It prints a line per sweep and, every minute, the runs
# counted by state.
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
t0=$(date +%s) total=300  # runs of the five sweeps below
say() { printf '[cpu-study %s, %d min] %s\n' "$(date -u +%H:%M)" $(( ($(date +%s) - t0) / 60 )) "$*"; }
# a line a minute with the runs' states (read from the run database, no MLflow import), until the sweeps end
ticker() {
  while sleep 60; do
    python - "$here/mlflow.db" "$total" <<'PY' 2>/dev/null || true
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)  # read only: never creates the database
rows = db.execute("select r.status, count(*) from runs r join experiments e on r.experiment_id = e.experiment_id "
                  "where e.name = 'cpu-study' group by r.status").fetchall()
print("[cpu-study] runs: " + ", ".join(f"{n} {s}" for s, n in sorted(rows)) + f" (of {sys.argv[2]})", flush=True)
PY
  done
}
ticker & tick=$!
trap 'kill $tick 2>/dev/null || true' EXIT
sweep() { say "sweep $1 of 5: $2 ($3 runs)"; shift 3
  repro-sweep --config-dir "$here/conf" +preset=cpu_study project_dir="$PWD" "$@"; }
# every sweep: the three examples x seeds 1-5 x threads {1,2} x repeats {0,1} (conf/preset/cpu_study.yaml)
# TensorFlow: oneDNN on and off, with op determinism on; then op determinism off with oneDNN on
# (oneDNN off with op determinism off is left out to fit about 75 minutes: README, "The conf now")
sweep 1 "TensorFlow, oneDNN on and off" 120 keras_backend=tensorflow onednn=true,false op_determinism=true
sweep 2 "TensorFlow, op determinism off" 60 keras_backend=tensorflow onednn=true op_determinism=false
# JAX and PyTorch, op determinism on (oneDNN is not a switch of JAX; op determinism changed no CPU bits of either)
sweep 3 "JAX" 60 keras_backend=jax op_determinism=true
sweep 4 "PyTorch, one thread" 30 keras_backend=torch op_determinism=true threads=1
# PyTorch's two threads spin-wait on a core another run holds (fit 2-7x as long): these go one at a time
sweep 5 "PyTorch, two threads, one run at a time" 30 keras_backend=torch op_determinism=true threads=2 \
  hardware.backend_config.parallel=1
say "runs done; analysing"
if [[ "$out" -ef "$here/report" || ! -d "$here/report" ]]; then
  repro analyze --sweep cpu-study --out "$out"
else
  repro analyze --sweep cpu-study --out "$out" --baseline "$here/report"
fi
# one setting's values as the environments: report_by_threads/, report_by_op_determinism/, report_by_keras_backend/
for f in threads op_determinism keras_backend; do
  repro analyze --sweep cpu-study --by "params.$f" --no-log --out "${out%/}_by_$f" > /dev/null
done
say "done: $out and ${out%/}_by_*"
