#!/usr/bin/env bash
# One-time setup on a fresh Debian 12 machine: Python package, Darknet, Caffe-SSD (cached builds).
# Used by `make setup`, `.ci/run` and the Docker images. Safe to re-run: finished builds are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "[setup] apt-get install ${missing[*]}"
  if [ ! -f /tmp/.harness-apt-updated ]; then apt-get update -qq && touch /tmp/.harness-apt-updated; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Headless Chromium renders report.html in the report tests.
if [ "${HARNESS_SKIP_BROWSER:-0}" != 1 ]; then apt_install chromium; fi
# The tests lint the install scripts with ShellCheck; CI (HARNESS_REQUIRE_LINTERS=1) must have it.
if [ "${HARNESS_REQUIRE_LINTERS:-0}" = 1 ]; then apt_install shellcheck; fi

# A real single-node Slurm cluster for tests/test_slurm_runner.py (scripts/slurm_local.sh starts it).
if [ "${HARNESS_WITH_SLURM:-0}" = 1 ]; then apt_install slurmctld slurmd slurm-client munge; fi

echo "[setup] pip install -e .[test,caffe]"
"$PYTHON" -m pip install -q -e ".[test,caffe]"

echo "[setup] Darknet"
bash scripts/install_darknet.sh
echo "[setup] Caffe-SSD (first build ~9 min on 2 cores, then cached)"
bash scripts/install_caffe.sh
echo "[setup] done"
