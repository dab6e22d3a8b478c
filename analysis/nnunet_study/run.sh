#!/usr/bin/env bash
# Re-run the nnU-Net study from scratch, with the tool alone:
#   bash analysis/nnunet_study/run.sh [SEEDS]      (SEEDS default 1,2: the committed report)
# The quick size of bench/results/examples.json (5 cases of 16^3, 1 epoch of 2 iterations, 1 validation
# iteration, 1 thread), crossed: repeat 0,1 x augmentation_workers 0,2 x op_determinism true,false,
# one run at a time (parallel 1). Runs go to analysis/nnunet_study/mlflow.db (experiment nnunet-study);
# the report, CSV and JSON of `repro analyze` go to analysis/nnunet_study/report/.
set -euo pipefail
seeds=${1:-1,2}
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
here=analysis/nnunet_study
export MLFLOW_TRACKING_URI="sqlite:///$PWD/$here/mlflow.db" REPRO_HOME="$PWD/$here/.repro"
repro-sweep example=nnunet_segmentation experiment=nnunet-study sweep=nnunet-study project_dir="$PWD" \
  example.params.cases=5 example.params.size=16 example.params.epochs=1 \
  example.params.iterations_per_epoch=2 +example.params.val_iterations_per_epoch=1 threads=1 \
  seed="$seeds" repeat=0,1 augmentation_workers=0,2 op_determinism=true,false -m
repro analyze --sweep nnunet-study --out "$here/report"
