#!/usr/bin/env bash
# The cross-CPU study: the CPU study's runs on an AMD EPYC (its MLflow store, from
# ../shared/studies/cpu_study_amd_epyc_2026-12-01/store.tgz) and on an Intel Xeon (the committed
# analysis/cpu_study/v1_2026-11-26/report/runs.csv) analysed together by one `repro analyze`, two stores:
#   bash analysis/cross_cpu_study/run.sh [STORE_TGZ]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tgz=${1:-$root/../shared/studies/cpu_study_amd_epyc_2026-12-01/store.tgz}
[[ -f $tgz ]] || tgz=/work/shared/studies/cpu_study_amd_epyc_2026-12-01/store.tgz
export PATH="$root/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$tgz" -C "$tmp"
# artifact locations in that store are relative to store/: analyse from there
cd "$tmp/store"
repro analyze --sweep cpu-study --no-log \
  --store sqlite:///mlflow.db --store "$root/analysis/cpu_study/v1_2026-11-26/report/runs.csv" \
  --out "$root/analysis/cross_cpu_study/report"
