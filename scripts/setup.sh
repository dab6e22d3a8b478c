#!/usr/bin/env bash
# Install everything repro-mlflow needs into .venv (idempotent; a no-op when nothing changed).
#   scripts/setup.sh           Python environment only
#   scripts/setup.sh --oldest-mlflow   also .venv-mlflow-oldest: the oldest MLflow supported (3.10), for
#                              the worker-side and analysis tests that scripts/test.sh runs a second time
#   scripts/setup.sh --system  also the Debian packages the tests use (Slurm, munge, Chromium, PostgreSQL,
#                              python3-venv for the HTCondor test pool's job Python; HTCondor itself comes
#                              from ../shared/htcondor and needs no library beyond what Debian 12 has)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ " $* " == *" --system "* ]]; then
  pkgs=(slurm-wlm munge chromium postgresql python3-venv)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
stamp=.venv/.repro-installed
want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: installing Python packages into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[framework,jax,torch,htcondor,aws,gpu,dev]"
  echo "$want" > "$stamp"
fi

if [[ " $* " == *" --oldest-mlflow "* ]]; then
  old=.venv-mlflow-oldest
  [[ -x $old/bin/python ]] || "$PY" -m venv "$old"
  want=$(cat pyproject.toml requirements/constraints-mlflow-oldest.txt | sha256sum | cut -c1-16)
  if [[ "$(cat "$old/.repro-installed" 2>/dev/null)" != "$want" ]]; then
    echo "setup: installing the oldest supported MLflow into $old (first time: about a minute)"
    $old/bin/python -m pip install -q --upgrade pip
    $old/bin/python -m pip install -q -c requirements/constraints-mlflow-oldest.txt -e ".[dev]"
    echo "$want" > "$old/.repro-installed"
  fi
fi
