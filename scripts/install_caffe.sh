#!/usr/bin/env bash
# Build the paper's Caffe — weiliu89/caffe, `ssd` branch, at the commit pinned in scripts/sources.lock —
# into a commit-keyed cache. The source tree comes from scripts/fetch_source.sh (a mirror folder
# checked by sha256, else a git fetch of exactly that commit), gets the source fixes of
# scripts/patch_caffe_weiliu89.py (OpenCV 4 names, protobuf >= 3.7, SampleBBox clamp, CUDA 13) and is
# built with its Makefile (`make all py`: the caffe tool, tools/convert_annoset and pycaffe).
# Facts behind every choice: docs/caffe.md.
#
# Environment knobs (all optional):
#   HARNESS_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/leukonet-harness)
#   HARNESS_SOURCES        mirror folder holding weiliu89-caffe-<commit>.tar.gz (see fetch_source.sh)
#   HARNESS_CAFFE_PREFIX   build directory (default <cache>/caffe-weiliu89-ssd-<commit12>[-cuda])
#   HARNESS_CAFFE_GPU=1    CUDA build (CPU_ONLY off, cuDNN off: Caffe's cuDNN code predates cuDNN 8)
#     CUDA_DIR             CUDA toolkit (default /usr/local/cuda)
#     CUDA_ARCH            nvcc -gencode flags (default "-gencode arch=compute_90,code=sm_90")
#     HARNESS_CAFFE_EXTRA_INCLUDE / HARNESS_CAFFE_EXTRA_LIB   extra dirs, space separated
#                          (e.g. cuBLAS/cuRAND headers+libs from the nvidia-* PyPI wheels)
#   HARNESS_SKIP_APT=1     do not touch apt (machines without apt; -dev packages already there)
#   HARNESS_CAFFE_JOBS     make -j (default: number of cores)
#   HARNESS_CAFFE_FORCE=1  rebuild even when a complete build is cached
#   PYTHON                 interpreter pycaffe is built for (default python3)
set -euo pipefail

SOURCE_NAME=weiliu89-caffe
PYTHON=${PYTHON:-python3}
GPU=${HARNESS_CAFFE_GPU:-0}
JOBS=${HARNESS_CAFFE_JOBS:-$(nproc)}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CACHE_ROOT=${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leukonet-harness}
COMMIT=$(awk -v n="$SOURCE_NAME" '$1 == n {print $3; exit}' "${HARNESS_SOURCES_LOCK:-$SCRIPT_DIR/sources.lock}")
[[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]] || { echo "[install_caffe] no commit for $SOURCE_NAME in scripts/sources.lock" >&2; exit 2; }
CACHE_KEY="caffe-weiliu89-ssd-${COMMIT:0:12}"
[ "$GPU" = "1" ] && CACHE_KEY="${CACHE_KEY}-cuda"
PREFIX=${HARNESS_CAFFE_PREFIX:-$CACHE_ROOT/$CACHE_KEY}
STAMP="$PREFIX/.harness-build-complete"

APT_PACKAGES=(
  build-essential pkg-config
  libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-regex-dev
  libboost-python-dev liblmdb-dev libleveldb-dev libsnappy-dev libopencv-dev libopenblas-dev
)
PIP_PACKAGES=(numpy protobuf scikit-image scipy six)

log() { printf '[install_caffe] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install_apt_packages() {
  if [ "${HARNESS_SKIP_APT:-0}" = "1" ]; then log "HARNESS_SKIP_APT=1: not checking apt packages"; return; fi
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "apt packages: all ${#APT_PACKAGES[@]} present"; return; fi
  log "apt packages missing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

install_pip_packages() {
  # pycaffe imports these at `import caffe` time; install only what is missing.
  if "$PYTHON" -c "import numpy, google.protobuf, skimage, scipy, six" 2>/dev/null; then
    log "pycaffe Python deps: present"; return
  fi
  log "installing pycaffe Python deps: ${PIP_PACKAGES[*]}"
  "$PYTHON" -m pip install --quiet "${PIP_PACKAGES[@]}"
}

fetch_source() {
  # A fresh $PREFIX holding a copy of the verified tree, so a half-finished earlier attempt never
  # leaks into this one; the tree's .harness-source (commit, origin, sha256) comes along.
  local tree
  tree=$(bash "$SCRIPT_DIR/fetch_source.sh" "$SOURCE_NAME") || die "no verified $SOURCE_NAME source (above)"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  cp -a "$tree/." "$PREFIX/"
}

python_include_dirs() {
  "$PYTHON" - <<'EOF'
import sysconfig, numpy
print(sysconfig.get_paths()["include"], numpy.get_include())
EOF
}

write_makefile_config() {
  local py_include py_lib boost_python extra_inc extra_lib
  py_include=$(python_include_dirs)
  py_lib=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
  boost_python=$("$PYTHON" -c 'import sys; print("boost_python%d%d" % sys.version_info[:2])')
  extra_inc=${HARNESS_CAFFE_EXTRA_INCLUDE:-}
  extra_lib=${HARNESS_CAFFE_EXTRA_LIB:-}
  {
    echo "# Written by scripts/install_caffe.sh — see docs/caffe.md"
    if [ "$GPU" = "1" ]; then
      echo "USE_CUDNN := 0"
      echo "CUDA_DIR := ${CUDA_DIR:-/usr/local/cuda}"
      echo "CUDA_ARCH := ${CUDA_ARCH:--gencode arch=compute_90,code=sm_90}"
    else
      echo "CPU_ONLY := 1"
    fi
    echo "USE_OPENCV := 1"
    echo "USE_LEVELDB := 1"
    echo "USE_LMDB := 1"
    echo "OPENCV_VERSION := 3"
    echo "BLAS := open"
    echo "BLAS_INCLUDE := /usr/include/x86_64-linux-gnu/openblas-pthread"
    echo "BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-pthread"
    echo "PYTHON_INCLUDE := ${py_include}"
    echo "PYTHON_LIBRARIES := ${boost_python}"
    echo "PYTHON_LIB := ${py_lib}"
    echo "INCLUDE_DIRS := \$(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial /usr/include/opencv4 ${extra_inc}"
    echo "LIBRARY_DIRS := \$(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/x86_64-linux-gnu/hdf5/serial ${extra_lib}"
    echo "BUILD_DIR := build"
    echo "DISTRIBUTE_DIR := distribute"
    echo "TEST_GPUID := 0"
    echo "Q ?= @"
  } > "$PREFIX/Makefile.config"
}

count_build_steps() {
  # One "CXX"/"NVCC"/"LD" line per compiled or linked file: the denominator of the progress counter.
  local cxx cu tools
  cxx=$(find "$PREFIX/src/caffe" -name '*.cpp' -not -path '*/test/*' | wc -l)
  tools=$(find "$PREFIX/tools" -name '*.cpp' | wc -l)
  cu=0
  [ "$GPU" = "1" ] && cu=$(find "$PREFIX/src/caffe" -name '*.cu' -not -path '*/test/*' | wc -l)
  echo $((cxx + tools + cu + 1 + 2 * tools + 4))
}

run_make() {
  local total step=0 started
  total=$(count_build_steps)
  started=$(date +%s)
  log "building in $PREFIX with make -j${JOBS} all py (about ${total} steps; log: $PREFIX/build.log)"
  set +e
  (cd "$PREFIX" && make -j"$JOBS" all py) 2>&1 | tee "$PREFIX/build.log" | while IFS= read -r line; do
    case "$line" in
      CXX*|NVCC*|LD*|AR*|PROTOC*) step=$((step + 1)); printf '[caffe %3d/%d %4ds] %s\n' "$step" "$total" $(( $(date +%s) - started )) "$line" ;;
      *error*|*Error*) printf '%s\n' "$line" ;;
    esac
  done
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { tail -n 40 "$PREFIX/build.log" >&2; die "make failed (rc $rc); full log: $PREFIX/build.log"; }
  BUILD_SECONDS=$(( $(date +%s) - started ))
  log "make finished in ${BUILD_SECONDS}s"
}

verify_build() {
  # Run the real tool and import the real module: a build that cannot do both is not done.
  local tool
  for tool in caffe convert_annoset; do
    [ -x "$PREFIX/build/tools/$tool" ] || die "$PREFIX/build/tools/$tool missing after build"
  done
  local version
  version=$("$PREFIX/build/tools/caffe" --version 2>&1) || die "caffe --version failed: $version"
  log "caffe tool: $version"
  GLOG_minloglevel=2 PYTHONPATH="$PREFIX/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c \
    'import caffe, sys; n = len(caffe.layer_type_list()); assert "DetectionOutput" in caffe.layer_type_list(); print(f"pycaffe OK: {caffe.__file__} ({n} layer types)")' \
    || die "python -c 'import caffe' failed with PYTHONPATH=$PREFIX/python (another Python than the build's? rebuild with HARNESS_CAFFE_FORCE=1)"
}

write_stamp() {
  # fork, commit and source sha256 for `harness doctor`, provenance.json and the report.
  local source="$PREFIX/.harness-source"
  {
    echo "fork=weiliu89"
    echo "version=ssd"
    echo "commit=$(sed -n 's/^commit=//p' "$source")"
    echo "source_sha256=$(sed -n 's/^sha256=//p' "$source")"
    echo "source_origin=$(sed -n 's/^origin=//p' "$source")"
    echo "gpu=${GPU}"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "build_seconds=${BUILD_SECONDS:-0}"
    echo "jobs=${JOBS}"
    echo "python=$("$PYTHON" -c 'import sys; print(sys.executable)')"
  } > "$STAMP"
}

main() {
  install_apt_packages
  install_pip_packages
  if [ -f "$STAMP" ] && [ "${HARNESS_CAFFE_FORCE:-0}" != "1" ]; then
    log "complete build cached at $PREFIX ($(grep '^built=' "$STAMP"))"
    if [ "$GPU" = "1" ] && ! nvidia-smi >/dev/null 2>&1; then
      log "GPU build on a machine without a GPU: skipping the run check"
    else
      verify_build
    fi
    echo "$PREFIX"
    return
  fi
  fetch_source
  # OpenCV 4 names, protobuf's one-argument SetTotalBytesLimit, SampleBBox clamp, CUDA 13 DeviceQuery.
  "$PYTHON" "$SCRIPT_DIR/patch_caffe_weiliu89.py" "$PREFIX"
  write_makefile_config
  run_make
  if [ "$GPU" = "1" ] && ! nvidia-smi >/dev/null 2>&1; then
    [ -x "$PREFIX/build/tools/caffe" ] || die "build/tools/caffe missing after build"
    log "GPU build on a machine without a GPU: compiled and linked; run check skipped"
  else
    verify_build
  fi
  write_stamp
  log "done: HARNESS_CAFFE_ROOT=$PREFIX (or leave unset: the harness finds the cache)"
  echo "$PREFIX"
}

main "$@"
