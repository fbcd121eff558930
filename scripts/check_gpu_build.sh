#!/usr/bin/env bash
# Prove that the GPU recipes still compile and link on a machine that has nvcc but no GPU.
#
# Why: the Docker images and GPU runners use the very same install scripts with GPU knobs
# (scripts/install_darknet.sh, scripts/install_caffe.sh). A GPU runner is rare; nvcc is not.
# This script builds both GPU variants here so a broken GPU code path is caught early.
# It cannot *run* them (no GPU): it checks that the results are linked against CUDA and carry
# device code for the requested architecture. Facts behind it: docs/gpu.md.
#
# Usage: scripts/check_gpu_build.sh [darknet|caffe|all]        (default: all)
#        scripts/check_gpu_build.sh gencode SM...   print nvcc -gencode flags for e.g. "61 90"
#                                                   (the newest SM also gets PTX); used by docker/
#        scripts/check_gpu_build.sh archs FILE      print the sm_XX of the device code in FILE
#        scripts/check_gpu_build.sh patch-caffe-sdist IN.tar.gz OUT.tar.gz
#                                                   brocolli-caffe sdist with scripts/patch_caffe_gpu.py
#                                                   applied (for HARNESS_CAFFE_SDIST); used by docker/
# Knobs (all optional):
#   HARNESS_CACHE        cache root (default ${XDG_CACHE_HOME:-~/.cache}/leukonet-harness)
#   CUDA_HOME            toolkit with bin/nvcc (default: where the nvcc on PATH, else
#                        /usr/local/cuda/bin/nvcc, really lives)
#   GPU_CHECK_SM         compute capability digits to build for (default 90 = H100/H200)
#   GPU_CHECK_REPORT     JSON file to write the results to (default <cache>/gpu-build-check.json)
# Exit codes: 0 all requested builds passed, 1 a build failed, 3 skipped (no nvcc here).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leukonet-harness}
SM=${GPU_CHECK_SM:-90}
GENCODE="-gencode arch=compute_${SM},code=sm_${SM}"
REPORT=${GPU_CHECK_REPORT:-$CACHE_ROOT/gpu-build-check.json}
PYTHON=${PYTHON:-python3}
WHAT=${1:-all}

# cuBLAS/cuRAND are not part of a bare nvcc install; the NVIDIA PyPI wheels carry them with
# headers. Pinned by version and sha256 (pip --require-hashes), CUDA 13 (cu13) builds.
CUDA_WHEELS=(
  "nvidia-cublas==13.10.0.20 --hash=sha256:dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84"
  "nvidia-curand==10.4.5.25 --hash=sha256:22bb226a857e5888fe6b54ae465fc4371296bcff13a35f79e19691bcf454f529"
)

log() { printf '[check_gpu_build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_cuda_home() {
  local nvcc=""
  if [ -n "${CUDA_HOME:-}" ]; then
    [ -x "$CUDA_HOME/bin/nvcc" ] && nvcc="$CUDA_HOME/bin/nvcc"
  else
    nvcc=$(command -v nvcc || true)
    [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
  fi
  if [ -z "$nvcc" ]; then
    log "SKIP: nvcc not found (no CUDA toolkit${CUDA_HOME:+ at CUDA_HOME=$CUDA_HOME}): nothing to check"
    exit 3
  fi
  if [ -n "${CUDA_HOME:-}" ]; then echo "$CUDA_HOME"; return; fi
  # /usr/local/bin/nvcc may be a wrapper script; nvcc itself reports where it lives.
  local real
  real=$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)
  if [ -n "$real" ] && [ -d "$real" ]; then (cd "$real" && pwd -P); return; fi
  real=$(readlink -f "$nvcc")
  dirname "$(dirname "$real")"
}

nvcc_release() {
  "$CUDA_HOME_REAL/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p'
}

link_into() {  # link_into DIR FILE...: symlink each file into DIR under its own name
  local dir=$1; shift
  for f in "$@"; do ln -sfn "$f" "$dir/$(basename "$f")"; done
}

install_cuda_wheels() {
  local target=$1
  [ -f "$target/.complete" ] && return
  local req
  req=$(mktemp)
  printf '%s\n' "${CUDA_WHEELS[@]}" > "$req"
  log "installing cuBLAS/cuRAND wheels (hash-checked) into $target"
  rm -rf "$target"
  "$PYTHON" -m pip install --quiet --no-deps --require-hashes --target "$target" -r "$req"
  rm -f "$req"
  touch "$target/.complete"
}

make_cuda_prefix() {
  # A toolkit-shaped directory (bin/ include/ lib64/) that the Makefiles accept as CUDA_DIR /
  # CUDA_PATH: the nvcc toolkit plus the wheels' cuBLAS/cuRAND, with the unversioned .so names
  # the linker needs, plus a libcuda.so link stub when the toolkit ships none (the driver
  # library exists only where a GPU driver is installed; nothing here calls it at link time).
  if [ -f "$CUDA_HOME_REAL/include/cublas_v2.h" ] && ls "$CUDA_HOME_REAL"/lib64/libcublas.so >/dev/null 2>&1; then
    CUDA_PREFIX=$CUDA_HOME_REAL; STUBBED_LIBCUDA=0; return
  fi
  local release wheels
  release=$(nvcc_release)
  [ "${release%%.*}" = "13" ] || die "nvcc $release has no cuBLAS here and only the CUDA 13 wheels are pinned; set CUDA_HOME to a full toolkit"
  wheels="$CACHE_ROOT/cuda-wheels-cu13"
  install_cuda_wheels "$wheels"
  CUDA_PREFIX="$CACHE_ROOT/cuda-prefix-$release"
  STUBBED_LIBCUDA=0
  if [ -f "$CUDA_PREFIX/.complete" ]; then
    # Reused as is: another build may be compiling against it right now.
    [ -f "$CUDA_PREFIX/lib64/stubs/stub.c" ] && STUBBED_LIBCUDA=1
  else
    # Assembled beside and renamed into place, so no build ever sees a half-made prefix.
    local work="$CUDA_PREFIX.tmp.$$"
    rm -rf "$work"
    mkdir -p "$work/include" "$work/lib64"
    ln -sfn "$CUDA_HOME_REAL/bin" "$work/bin"
    ln -sfn "$CUDA_HOME_REAL/nvvm" "$work/nvvm"
    link_into "$work/include" "$CUDA_HOME_REAL"/include/* "$wheels"/nvidia/cu13/include/*
    link_into "$work/lib64" "$CUDA_HOME_REAL"/lib64/*
    local lib base
    for lib in "$wheels"/nvidia/cu13/lib/*.so.*; do
      base=$(basename "$lib")
      ln -sfn "$lib" "$work/lib64/$base"
      ln -sfn "$lib" "$work/lib64/${base%%.so*}.so"
    done
    if [ ! -e "$work/lib64/libcuda.so" ]; then
      mkdir -p "$work/lib64/stubs"
      echo 'void harness_libcuda_link_stub(void) {}' > "$work/lib64/stubs/stub.c"
      gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$work/lib64/libcuda.so" "$work/lib64/stubs/stub.c"
      STUBBED_LIBCUDA=1
    fi
    touch "$work/.complete"
    rm -rf "$CUDA_PREFIX"
    mv "$work" "$CUDA_PREFIX"
  fi
  log "CUDA prefix for the builds: $CUDA_PREFIX (nvcc $release; libcuda link stub: $STUBBED_LIBCUDA)"
}

has_device_code() {  # has_device_code FILE: the ELF carries an embedded CUDA fat binary
  readelf -S --wide "$1" 2>/dev/null | grep -q '\.nv_fatbin'
}

links_cuda() {  # links_cuda FILE: needs libcudart and libcublas at run time
  local needed
  needed=$(readelf -d "$1" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
  echo "$needed" | grep -q '^libcudart\.so' && echo "$needed" | grep -q '^libcublas\.so'
}

cubin_archs() {  # cubin_archs FILE: the sm_XX of each device-code ELF embedded in FILE
  "$PYTHON" - "$1" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
archs, start = set(), 0
while (i := data.find(b"\x7fELF\x02\x01\x01", start + 1)) != -1:
    start = i
    e_machine = struct.unpack_from("<H", data, i + 18)[0]
    if e_machine == 190:  # EM_CUDA
        flags = struct.unpack_from("<I", data, i + 48)[0]
        # Older toolkits keep the SM number in bits 0..7 of e_flags (e.g. 0x5003d = sm_61);
        # CUDA 13 moved it to bits 8..15 with a small ABI number below (0x6005a04 = sm_90).
        low, mid = flags & 0xFF, (flags >> 8) & 0xFF
        sm = low if low >= 20 else mid
        archs.add(f"sm_{sm}")
print(" ".join(sorted(archs, key=lambda arch: int(arch[3:]))))
EOF
}

check_artifact() {  # check_artifact NAME FILE: linked against CUDA and carries sm_$SM code
  local name=$1 file=$2 archs
  [ -f "$file" ] || { log "$name: $file missing"; return 1; }
  links_cuda "$file" || { log "$name: $file does not link libcudart+libcublas"; return 1; }
  has_device_code "$file" || { log "$name: $file has no .nv_fatbin section"; return 1; }
  archs=$(cubin_archs "$file")
  case " $archs " in *" sm_${SM} "*) ;; *) log "$name: $file has device code for [$archs], not sm_${SM}"; return 1 ;; esac
  log "$name: $file OK (links libcudart+libcublas, device code: $archs)"
  ARTIFACT_ARCHS=$archs
}

record() {  # record NAME STATUS SECONDS DETAIL
  RESULTS+=("$("$PYTHON" -c 'import json,sys; print(json.dumps({"target": sys.argv[1], "status": sys.argv[2], "seconds": int(sys.argv[3]), "detail": sys.argv[4]}))' "$@")")
}

check_darknet() {
  local script="$SCRIPT_DIR/install_darknet.sh" started out prefix
  if [ ! -f "$script" ]; then record darknet missing 0 "scripts/install_darknet.sh not found"; return 1; fi
  if ! grep -q HARNESS_DARKNET_GPU "$script"; then
    record darknet missing 0 "scripts/install_darknet.sh has no HARNESS_DARKNET_GPU knob"; return 1
  fi
  started=$(date +%s)
  # install_darknet.sh takes bare SM numbers; install_caffe.sh takes nvcc -gencode flags.
  log "darknet: HARNESS_DARKNET_GPU=1 CUDA_PATH=$CUDA_PREFIX CUDA_ARCH=$SM scripts/install_darknet.sh --no-apt"
  if ! out=$(HARNESS_DARKNET_GPU=1 CUDA_PATH="$CUDA_PREFIX" CUDA_ARCH="$SM" HARNESS_CACHE="$CACHE_ROOT" \
      bash "$script" --no-apt); then
    record darknet failed $(( $(date +%s) - started )) "install_darknet.sh failed"; return 1
  fi
  prefix=$(printf '%s\n' "$out" | tail -n1)
  local lib
  lib=$(find "$prefix" -name 'libdarknet.so' -print -quit 2>/dev/null || true)
  if [ -n "$lib" ] && check_artifact darknet "$lib"; then
    record darknet ok $(( $(date +%s) - started )) "$lib: $ARTIFACT_ARCHS"
  else
    record darknet failed $(( $(date +%s) - started )) "no GPU libdarknet.so under '$prefix'"; return 1
  fi
}

CAFFE_SDIST_SHA256=c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a

patch_caffe_sdist() {  # patch_caffe_sdist IN OUT: the sdist with the GPU source fixes applied
  local in=$1 out=$2 work
  [ -f "$in" ] || die "patch-caffe-sdist: no such file '$in'"
  work=$(mktemp -d)
  tar -xzf "$in" -C "$work"
  local top
  top=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [ -n "$top" ] || die "patch-caffe-sdist: '$in' holds no top directory"
  "$PYTHON" "$SCRIPT_DIR/patch_caffe_gpu.py" "$top" || die "patch-caffe-sdist: patch_caffe_gpu.py failed on '$in'"
  mkdir -p "$(dirname "$out")"
  tar -czf "$out.tmp" -C "$work" "$(basename "$top")"
  mv "$out.tmp" "$out"
  rm -rf "$work"
}

gpu_caffe_sdist() {  # the pinned sdist (sha256-checked), patched for GPU builds; prints its path
  local dir="$CACHE_ROOT/src/caffe-gpu" sdist
  sdist="$dir/brocolli-caffe-9.0.2.tar.gz"
  if [ ! -f "$dir/patched/brocolli-caffe-9.0.2.tar.gz" ]; then
    mkdir -p "$dir"
    [ -f "$sdist" ] || "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: brocolli-caffe==9.0.2 -d "$dir" >&2
    echo "$CAFFE_SDIST_SHA256  $sdist" | sha256sum -c --quiet - >&2 || die "$sdist: sha256 mismatch"
    patch_caffe_sdist "$sdist" "$dir/patched/brocolli-caffe-9.0.2.tar.gz"
  fi
  echo "$dir/patched/brocolli-caffe-9.0.2.tar.gz"
}

check_caffe() {
  local started out prefix sdist
  started=$(date +%s)
  # Until install_caffe.sh applies patch_caffe_gpu.py itself, hand it a patched sdist.
  sdist=${HARNESS_CAFFE_SDIST:-$(gpu_caffe_sdist)}
  log "caffe: HARNESS_CAFFE_GPU=1 CUDA_DIR=$CUDA_PREFIX CUDA_ARCH='$GENCODE' scripts/install_caffe.sh (long)"
  if ! out=$(HARNESS_CAFFE_GPU=1 CUDA_DIR="$CUDA_PREFIX" CUDA_ARCH="$GENCODE" HARNESS_CACHE="$CACHE_ROOT" \
      HARNESS_CAFFE_SDIST="$sdist" bash "$SCRIPT_DIR/install_caffe.sh"); then
    record caffe failed $(( $(date +%s) - started )) "install_caffe.sh failed (see its build.log)"; return 1
  fi
  prefix=$(printf '%s\n' "$out" | tail -n1)
  local lib
  lib=$(find "$prefix/build/lib" -name 'libcaffe.so*' -type f -print -quit 2>/dev/null || true)
  if [ -n "$lib" ] && check_artifact caffe "$lib" && [ -x "$prefix/build/tools/caffe" ]; then
    record caffe ok $(( $(date +%s) - started )) "$lib: $ARTIFACT_ARCHS"
  else
    record caffe failed $(( $(date +%s) - started )) "no GPU libcaffe.so / build/tools/caffe under '$prefix'"; return 1
  fi
}

write_report() {
  mkdir -p "$(dirname "$REPORT")"
  local joined
  joined=$(IFS=,; echo "${RESULTS[*]:-}")
  "$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); json.dump(r, open(sys.argv[2], "w"), indent=2); print(json.dumps(r, indent=2))' \
    "{\"nvcc\": \"$(nvcc_release)\", \"sm\": \"sm_${SM}\", \"cuda_prefix\": \"$CUDA_PREFIX\", \"libcuda_link_stub\": ${STUBBED_LIBCUDA}, \"results\": [${joined}]}" "$REPORT"
  log "report: $REPORT"
}

gencode_flags() {  # gencode_flags SM...: cubins for each SM, plus PTX of the newest for future GPUs
  [ $# -gt 0 ] || die "gencode: give compute capabilities, e.g. 61 90"
  local sm flags="" newest=0
  for sm in "$@"; do
    [[ "$sm" =~ ^[0-9]{2,3}[a-z]?$ ]] || die "gencode: '$sm' is not a compute capability like 61 or 90"
    flags+="-gencode arch=compute_${sm},code=sm_${sm} "
    [ "${sm//[a-z]/}" -gt "${newest//[a-z]/}" ] && newest=$sm
  done
  echo "${flags}-gencode arch=compute_${newest},code=compute_${newest}"
}

main() {
  case "$WHAT" in
    darknet|caffe|all) ;;
    gencode) shift; gencode_flags "$@"; return ;;
    archs) [ -f "${2:-}" ] || die "archs: no such file '${2:-}'"; cubin_archs "$2"; return ;;
    patch-caffe-sdist) [ $# -eq 3 ] || die "usage: $0 patch-caffe-sdist IN.tar.gz OUT.tar.gz"
      patch_caffe_sdist "$2" "$3"; return ;;
    *) die "usage: $0 [darknet|caffe|all] | gencode SM... | archs FILE" ;;
  esac
  CUDA_HOME_REAL=$(find_cuda_home) || exit $?
  make_cuda_prefix
  RESULTS=()
  local rc=0
  if [ "$WHAT" = darknet ] || [ "$WHAT" = all ]; then check_darknet || rc=1; fi
  if [ "$WHAT" = caffe ] || [ "$WHAT" = all ]; then check_caffe || rc=1; fi
  write_report
  return $rc
}

main "$@"
