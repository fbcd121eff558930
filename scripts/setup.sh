#!/usr/bin/env bash
# One-time setup on a fresh Debian 12 machine: Python package, Darknet, Caffe-SSD (cached builds).
# Used by `make setup`, `.ci/run` and the Docker images. Safe to re-run: finished builds are skipped.
#
# Quiet by default: one line per step; apt, pip and make output goes to a log file under the cache
# directory whose path is printed, and a failing step prints that log's last lines.
# HARNESS_VERBOSE=1 (or `make setup V=1`) streams everything as well.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive
CACHE="${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leukonet-harness}"
mkdir -p "$CACHE"
LOG="$CACHE/setup.log"
VERBOSE=${HARNESS_VERBOSE:-0}
: > "$LOG"
echo "[setup] log: $LOG"

# Pinned framework sources (scripts/sources.lock, scripts/fetch_source.sh): an offline mirror folder
# beside the checkout when there is one (CI and these machines: ../shared/vendor), else GitHub.
if [ -z "${HARNESS_SOURCES:-}" ] && [ -d ../shared/vendor ]; then
  HARNESS_SOURCES=$(cd ../shared/vendor && pwd); export HARNESS_SOURCES
fi

# What the install scripts print when they build/install something, and when they skip.
WORK_DONE='built in [0-9]+s|make finished|^apt-get install|Setting up |Successfully installed|installing pycaffe'
NOTHING_TO_DO='already built|complete build cached|already installed|up to date'

# step WHAT COMMAND...: runs COMMAND with its output in the log; prints one line with the outcome.
step() {
  local what=$1; shift
  local started=$SECONDS mark
  mark=$(wc -l < "$LOG")
  printf '[setup] %-58s' "$what"
  [ "$VERBOSE" = 1 ] && echo
  if { if [ "$VERBOSE" = 1 ]; then "$@" 2>&1 | tee -a "$LOG"; else "$@" >>"$LOG" 2>&1; fi; }; then
    local output; output=$(tail -n +"$((mark + 1))" "$LOG")
    if ! grep -qE "$WORK_DONE" <<< "$output" && grep -qE "$NOTHING_TO_DO" <<< "$output"; then
      echo "up to date"
    else
      echo "done in $((SECONDS - started)) s"
    fi
  else
    echo "FAILED after $((SECONDS - started)) s; last lines of $LOG:"
    tail -n 40 "$LOG" | sed 's/^/    /'
    exit 1
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -eq 0 ]; then echo "already installed: $*"; return 0; fi
  echo "apt-get install ${missing[*]}"
  if [ ! -f /tmp/.harness-apt-updated ]; then apt-get update -qq && touch /tmp/.harness-apt-updated; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# pip only when the package metadata changed since the last setup of this checkout.
pip_install() {
  local key stamp
  key=$(cat pyproject.toml setup.cfg 2>/dev/null | cat - <(pwd) <("$PYTHON" --version) | sha256sum | cut -c1-16)
  stamp="$CACHE/.setup-pip-$key"
  # imported from / so the check sees the installed package, not this folder's copy
  if [ -f "$stamp" ] && (cd / && "$PYTHON" -c "import harness, sys; sys.exit(not harness.__file__.startswith('$PWD/'))") >/dev/null 2>&1; then
    echo "harness package up to date ($stamp)"
    return 0
  fi
  "$PYTHON" -m pip install -q -e ".[test,caffe]" && touch "$stamp"
}

# Headless Chromium renders report.html in the report tests.
if [ "${HARNESS_SKIP_BROWSER:-0}" != 1 ]; then step "Chromium (report tests)" apt_install chromium; fi
# The tests lint the install scripts with ShellCheck; CI (HARNESS_REQUIRE_LINTERS=1) must have it.
if [ "${HARNESS_REQUIRE_LINTERS:-0}" = 1 ]; then step "ShellCheck" apt_install shellcheck; fi

# A real single-node Slurm cluster for tests/test_slurm_runner.py (scripts/slurm_local.sh starts it).
if [ "${HARNESS_WITH_SLURM:-0}" = 1 ]; then step "Slurm + MUNGE (cluster tests)" apt_install slurmctld slurmd slurm-client munge; fi

step "pip install -e .[test,caffe]" pip_install
step "Darknet pjreddie (OpenMP + OpenBLAS build)" bash scripts/install_darknet.sh
step "Darknet AlexeyAB (pinned commit, LIBSO build, ~1 min)" bash scripts/install_darknet.sh --fork alexeyab
step "Caffe-SSD weiliu89 (first build 4-8 min)" bash scripts/install_caffe.sh
echo "[setup] done"
