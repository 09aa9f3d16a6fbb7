#!/usr/bin/env bash
# Install everything the pipeline needs on a fresh Debian machine: system tools, a venv with
# the pinned packages, and the project itself. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in espeak-ng ffmpeg sox; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch==2.13.0 is pinned in the lock: the CPU build; an unpinned torch pulls CUDA. Airflow
# (the `airflow` extra, for dags/ and its tests) has its own lock, resolved with this one.
.venv/bin/pip install -q -r requirements.lock -r requirements-airflow.lock
.venv/bin/pip install -q --no-deps -e '.[dev,airflow]'
touch .venv/.installed
