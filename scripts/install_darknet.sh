#!/usr/bin/env bash
# Install Debian's Darknet (pjreddie, git 2018-09-14) and build the SAME source faster.
#
# 1. apt-get install -y darknet          -> /usr/bin/darknet, /usr/lib/darknet/libdarknet.so
#    (CPU, single-threaded: no OpenMP, no BLAS).
# 2. Debian's source package (orig tarball + Debian patches) rebuilt with OPENMP=1 and
#    -Ofast -march=native (override with HARNESS_DARKNET_OPTS) into
#      ${HARNESS_CACHE:-~/.cache/leukonet-harness}/darknet-<debian version>-omp-<flags key>/
#    with bin/darknet, lib/libdarknet.so, include/darknet.h and a .stamp file written last.
#    Skipped when the stamp is present. `harness doctor` / find_darknet() prefer this build.
# 3. HARNESS_DARKNET_GPU=1 builds GPU=1 instead, into darknet-<version>-gpu-sm<arch>-<key>/.
# 4. --fork alexeyab: AlexeyAB's Darknet at the commit pinned in scripts/sources.lock (tree from
#    scripts/fetch_source.sh: the HARNESS_SOURCES mirror checked by sha256, else git by commit),
#    built with LIBSO=1 (libdarknet.so for the ctypes path) and its CPU switches
#    (HARNESS_ALEXEYAB_MAKE, default "GPU=0 CUDNN=0 OPENCV=0 AVX=1 OPENMP=1 OPTS=-O3": upstream's
#    -Ofast (-ffast-math) made its CPU training loss turn nan within 20-30 iterations on BCCD here,
#    twice, where -O3 trained on; docs/darknet.md) and, as for pjreddie's, OpenBLAS's cblas_sgemm in
#    gemm_cpu (HARNESS_DARKNET_BLAS; CPU builds only) into
#      ${HARNESS_CACHE}/darknet-alexeyab-<commit 8>-<cpu|gpu-sm..>-<flags key>/
#    (bin/darknet, lib/libdarknet.so, include/darknet.h, .stamp with fork, commit, source sha256,
#    make arguments). No apt, no Debian binary.
#
# Options:  --fork pjreddie|alexeyab   which Darknet (default pjreddie, the paper's)
#           --no-apt     do not apt-get install the Debian binary (build only)
#           --apt-only   install the Debian binary, build nothing
#           --force      rebuild even when the stamp exists
# Environment (all optional):
#   HARNESS_CACHE               cache root (default $XDG_CACHE_HOME or ~/.cache, /leukonet-harness)
#   HARNESS_DARKNET_OPTS        optimisation flags (default "-Ofast -march=native": upstream's own
#                               -Ofast (= -O3 -ffast-math; debian/rules passes only OPENCV=1, so Debian keeps it) plus the host's
#                               vector units; measured 1.45x less CPU per forward than Debian's and
#                               1.1-1.2x less than "-O3 -march=native". Use "-Ofast" or "-O3" for a
#                               portable build, e.g. a CI cache shared between CPUs or a GPU image)
#   HARNESS_DARKNET_OPENCV      1/0/auto (default 0: Darknet uses OpenCV only to show windows, read
#                               video and decode images, which stb_image does without it; a fixed
#                               default means one build whether or not Caffe's apt packages brought
#                               OpenCV first. auto: 1 when pkg-config finds opencv4, as Debian)
#   HARNESS_DARKNET_BLAS        openblas (default) or none. openblas: gemm_cpu calls OpenBLAS's
#                               cblas_sgemm (Debian's libopenblas-dev, installed if missing) instead
#                               of Darknet's plain loop nest; docs/benchmarks.md has the interleaved
#                               ratios that made it the default. none: the loop nest under OpenMP.
#   HARNESS_DARKNET_SOURCES     directory already holding darknet_*.dsc, *.orig.tar.xz,
#                               *.debian.tar.xz (machines without apt/internet); else apt-get source
#   JOBS                        parallel make jobs (default nproc)
# GPU variant (HARNESS_DARKNET_GPU=1):
#   CUDA_PATH                   CUDA toolkit root (default /usr/local/cuda)
#   NVCC                        nvcc to use (default $CUDA_PATH/bin/nvcc, else nvcc on PATH)
#   CUDA_ARCH                   space-separated SM numbers, e.g. "90" (H100/H200), "61 75" (default 90)
#   HARNESS_CUDA_INCLUDE_DIRS   extra include dirs, colon-separated (e.g. PyPI nvidia-cublas headers)
#   HARNESS_CUDA_LIB_DIRS       extra library dirs, colon-separated (e.g. .../nvidia/cu13/lib);
#                               unversioned lib*.so links are made for lib*.so.N files there
#   (--fork alexeyab with GPU=1 in HARNESS_ALEXEYAB_MAKE: CUDA_ARCH, when set, becomes its ARCH=)
#   HARNESS_DARKNET_CUDNN       1 to build with cuDNN (default 0)
set -euo pipefail

log() { printf '[install_darknet] %s\n' "$*" >&2; }
die() { printf '[install_darknet] ERROR: %s\n' "$*" >&2; exit 1; }

DO_APT=1; DO_BUILD=1; FORCE=0; FORK=pjreddie
while [ $# -gt 0 ]; do
    arg=$1; shift
    case "$arg" in
        --fork) FORK=${1:-}; shift || true ;;
        --fork=*) FORK=${arg#--fork=} ;;
        --no-apt) DO_APT=0 ;;
        --apt-only) DO_BUILD=0 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0"; exit 0 ;;
        *) die "unknown option '$arg' (see --help)" ;;
    esac
done
case "$FORK" in pjreddie|alexeyab) ;; *) die "--fork '$FORK': expected pjreddie or alexeyab" ;; esac

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
CACHE="${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leukonet-harness}"
JOBS="${JOBS:-$(nproc)}"

install_debian_binary() {
    if dpkg -s darknet >/dev/null 2>&1; then
        log "Debian darknet already installed: $(dpkg-query -W -f='${Version}' darknet)"
        return
    fi
    log "apt-get install -y darknet"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y darknet
}

have_deb_src() {
    grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

add_deb_src() {
    # Same URIs/Suites/Signed-By as Debian's own entry, with Types: deb-src.
    local src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || die "no deb-src entry and no $src to copy it from; add a deb-src line for darknet's suite"
    local target=/etc/apt/sources.list.d/harness-debian-src.sources
    log "adding deb-src entry $target"
    awk 'BEGIN{RS=""; ORS="\n\n"} NR==1 {sub(/Types:[^\n]*/, "Types: deb-src"); print}' "$src" \
        | $SUDO tee "$target" >/dev/null
    $SUDO apt-get update -qq
}

fetch_sources() {
    # Prints the directory holding the .dsc, orig and debian tarballs.
    if [ -n "${HARNESS_DARKNET_SOURCES:-}" ]; then
        ls "$HARNESS_DARKNET_SOURCES"/darknet_*.dsc >/dev/null 2>&1 \
            || die "HARNESS_DARKNET_SOURCES=$HARNESS_DARKNET_SOURCES holds no darknet_*.dsc"
        echo "$HARNESS_DARKNET_SOURCES"; return
    fi
    local dir="$CACHE/src/darknet-debian"
    if ! ls "$dir"/darknet_*.dsc >/dev/null 2>&1; then
        have_deb_src || add_deb_src
        mkdir -p "$dir"
        log "apt-get source --download-only darknet -> $dir"
        (cd "$dir" && apt-get source --download-only darknet >&2) \
            || die "apt-get source darknet failed (is there a deb-src entry? see /etc/apt/sources.list.d)"
    fi
    echo "$dir"
}

debian_version() {  # darknet_0.0.0+git20180914.61c9d02e-2.dsc -> 0.0.0+git20180914.61c9d02e-2
    local dsc; dsc=$(ls "$1"/darknet_*.dsc | sort | tail -n1)
    basename "$dsc" .dsc | sed 's/^darknet_//'
}

short_hash() { printf '%s' "$1" | sha256sum | cut -c1-10; }

unpack_and_patch() {  # $1 sources dir, $2 build dir
    local srcdir=$1 build=$2 version=$3
    mkdir -p "$build"
    tar -xf "$srcdir"/darknet_"${version%-*}".orig.tar.* -C "$build"
    local tree; tree=$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -n1)
    tar -xf "$srcdir"/darknet_"$version".debian.tar.* -C "$tree"
    local patch
    while read -r patch; do
        case "$patch" in ''|'#'*) continue ;; esac
        log "applying Debian patch $patch"
        patch -d "$tree" -p1 --quiet --forward < "$tree/debian/patches/$patch" >&2 \
            || die "Debian patch $patch did not apply"
    done < "$tree/debian/patches/series"
    echo "$tree"
}

opencv_flag() {
    local wanted="${HARNESS_DARKNET_OPENCV:-0}"
    if [ "$wanted" = auto ]; then
        if pkg-config --exists opencv4 2>/dev/null || pkg-config --exists opencv 2>/dev/null; then echo 1; else echo 0; fi
    else
        echo "$wanted"
    fi
}

blas_choice() {
    local wanted="${HARNESS_DARKNET_BLAS:-openblas}"
    case "$wanted" in
        openblas|none) echo "$wanted" ;;
        *) die "HARNESS_DARKNET_BLAS=$wanted: expected openblas or none" ;;
    esac
}

ensure_openblas() {
    if [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ]; then return 0; fi
    log "apt-get install -y libopenblas-dev (cblas_sgemm for Darknet's CPU gemm)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev >&2
}

use_cblas_gemm() {  # $1 tree: gemm_cpu -> cblas_sgemm (row-major, same TA/TB/lda/ldb/ldc meaning)
    local tree=$1
    python3 - "$tree/src/gemm.c" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
head = re.search(r"void gemm_cpu\(int TA, int TB, int M, int N, int K, float ALPHA,\s*float \*A, int lda,"
                 r"\s*float \*B, int ldb,\s*float BETA,\s*float \*C, int ldc\)\s*\{", text)
if head is None:
    sys.exit(f"{path}: gemm_cpu signature not found; cannot use cblas_sgemm")
call = ("\n#ifdef HARNESS_CBLAS\n    cblas_sgemm(CblasRowMajor, TA ? CblasTrans : CblasNoTrans, "
        "TB ? CblasTrans : CblasNoTrans,\n                M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc);\n"
        "    return;\n#endif\n")
text = text[:head.end()] + call + text[head.end():]
text = '#ifdef HARNESS_CBLAS\n#include <cblas.h>\n#endif\n' + text
open(path, "w").write(text)
PY
    sed -i 's#^LDFLAGS= -lm -pthread#LDFLAGS= -lm -pthread -lopenblas#' "$tree/Makefile"
    grep -q -- '-lopenblas' "$tree/Makefile" || die "could not add -lopenblas to $tree/Makefile"
}

cuda_make_args() {  # GPU=1 knobs: prints make arguments, edits the Makefile's fixed CUDA paths
    local tree=$1 cuda=${CUDA_PATH:-/usr/local/cuda}
    local nvcc=${NVCC:-}
    [ -n "$nvcc" ] || { [ -x "$cuda/bin/nvcc" ] && nvcc="$cuda/bin/nvcc"; } || nvcc=$(command -v nvcc || true)
    [ -n "$nvcc" ] || die "GPU build: no nvcc (set NVCC or CUDA_PATH)"
    local arch="" sm inc="-I$cuda/include" libs="-L$cuda/lib64 -Wl,-rpath,$cuda/lib64" dir
    for sm in ${CUDA_ARCH:-90}; do arch+=" -gencode arch=compute_${sm},code=[sm_${sm},compute_${sm}]"; done
    local links="$tree/cuda-links"; mkdir -p "$links"; libs+=" -L$links"
    IFS=: read -ra dirs <<< "${HARNESS_CUDA_INCLUDE_DIRS:-}"
    for dir in "${dirs[@]}"; do [ -n "$dir" ] && inc+=" -I$dir"; done
    IFS=: read -ra dirs <<< "${HARNESS_CUDA_LIB_DIRS:-}"
    for dir in "${dirs[@]}"; do
        [ -n "$dir" ] || continue
        libs+=" -L$dir -Wl,-rpath,$dir"
        for so in "$dir"/lib*.so.*; do   # PyPI wheels ship only libcublas.so.13 etc.
            [ -e "$so" ] || continue
            local base; base=$(basename "$so"); base=${base%%.so.*}.so
            [ -e "$dir/$base" ] || [ -e "$links/$base" ] || ln -s "$so" "$links/$base"
        done
    done
    sed -i "s#-I/usr/local/cuda/include/#$inc#; s#-L/usr/local/cuda/lib64#$libs#" "$tree/Makefile"
    # Darknet calls only the runtime API (cudart loads the driver when it runs): drop -lcuda so the
    # build also links on machines without a driver or stubs (CI, build hosts).
    sed -i 's#-lcuda -lcudart#-lcudart#' "$tree/Makefile"
    # CUDA 12+ removed cudaThreadSynchronize (used in gemm.c's GPU timing code).
    sed -i 's/cudaThreadSynchronize()/cudaDeviceSynchronize()/' "$tree/src/gemm.c"
    printf '%s\n' "GPU=1" "CUDNN=${HARNESS_DARKNET_CUDNN:-0}" "NVCC=$nvcc" "ARCH=$arch"
}

make_and_stage() {  # $1 tree, $2 target, $3 gpu (1: no run check), then make arguments; prints build seconds
    local tree=$1 target=$2 gpu=$3
    shift 3
    log "make -j$JOBS $*  (in $tree)"
    local started=$SECONDS
    make -C "$tree" -j"$JOBS" "$@" >&2 || die "make failed in $tree"
    if [ ! -x "$tree/darknet" ] || [ ! -f "$tree/libdarknet.so" ]; then die "build produced no darknet/libdarknet.so"; fi
    # Smoke test: the usage line proves it runs (darknet exits 0 and prints usage with no args).
    "$tree/darknet" 2>&1 | grep -q "usage" || [ "$gpu" = 1 ] || die "built darknet does not run"
    rm -rf "$target.tmp"; mkdir -p "$target.tmp"/{bin,lib,include}
    cp "$tree/darknet" "$target.tmp/bin/"
    cp "$tree/libdarknet.so" "$target.tmp/lib/"
    cp "$tree/include/darknet.h" "$target.tmp/include/"
    echo $((SECONDS - started))
}

already_built() {  # $1 target: prints it and succeeds when its stamp exists (and no --force)
    [ -f "$1/.stamp" ] && [ "$FORCE" = 0 ] || return 1
    log "already built: $1 (remove it or use --force to rebuild)"
    echo "$1"
}

has_arg() {  # $1 wanted, then arguments: prints true/false
    local wanted=$1 arg
    shift
    for arg in "$@"; do [ "$arg" = "$wanted" ] && { echo true; return; }; done
    echo false
}

publish() {  # $1 target, $2 build seconds, then key=value stamp fields (true/false: booleans)
    local target=$1 seconds=$2
    shift 2
    python3 - "$target.tmp/.stamp" "$seconds" "$@" <<'PY'
import datetime, json, sys
stamp = {}
for field in sys.argv[3:]:
    key, _, value = field.partition("=")
    stamp[key] = {"true": True, "false": False}.get(value, value)
stamp.update(build_seconds=int(sys.argv[2]),
             built=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
with open(sys.argv[1], "w") as handle:
    json.dump(stamp, handle, indent=1)
PY
    rm -rf "$target"; mv "$target.tmp" "$target"
    log "built in ${seconds}s: $target"
    echo "$target"
}

build_variant() {
    local srcdir version gpu opts opencv blas key_text variant target
    srcdir=$(fetch_sources)
    version=$(debian_version "$srcdir")
    gpu=${HARNESS_DARKNET_GPU:-0}
    opts=${HARNESS_DARKNET_OPTS:--Ofast -march=native}
    opencv=$(opencv_flag)
    blas=$(blas_choice)
    [ "$gpu" = 1 ] && blas=none      # the GPU build runs its gemm on the GPU
    key_text="opts=$opts;opencv=$opencv;gcc=$(gcc -dumpfullversion)"
    [ "$blas" = none ] || key_text+=";blas=$blas"
    case "$opts" in *native*) key_text+=";cpu=$(grep -m1 'model name' /proc/cpuinfo | tr -s '\t' ' ' || true)" ;; esac
    if [ "$gpu" = 1 ]; then
        key_text+=";cuda=${CUDA_PATH:-/usr/local/cuda};arch=${CUDA_ARCH:-90};cudnn=${HARNESS_DARKNET_CUDNN:-0}"
        variant="gpu-sm$(echo "${CUDA_ARCH:-90}" | tr ' ' '_')"
    else
        variant="omp"
    fi
    target="$CACHE/darknet-$version-$variant-$(short_hash "$key_text")"
    already_built "$target" && return
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/darknet-build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    local work=$WORK
    local tree; tree=$(unpack_and_patch "$srcdir" "$work" "$version")
    local -a make_args=(OPENMP=1 "OPENCV=$opencv" "OPTS=$opts")
    if [ "$blas" = openblas ]; then
        ensure_openblas
        use_cblas_gemm "$tree"
        make_args=(OPENMP=1 "OPENCV=$opencv" "OPTS=$opts -DHARNESS_CBLAS")
    fi
    if [ "$gpu" = 1 ]; then
        mapfile -t gpu_args < <(cuda_make_args "$tree")
        make_args+=("${gpu_args[@]}")
    fi
    local seconds
    seconds=$(make_and_stage "$tree" "$target" "$gpu" "${make_args[@]}")
    cp "$tree/libdarknet.a" "$target.tmp/lib/"
    cp -r "$tree/debian/patches" "$target.tmp/debian-patches"
    publish "$target" "$seconds" debian_version="$version" variant="$variant" openmp=true blas="$blas" \
        gpu="$([ "$gpu" = 1 ] && echo true || echo false)" opencv="$([ "$opencv" = 1 ] && echo true || echo false)" \
        opts="$opts" key="$key_text" make_args="${make_args[*]}"
}

build_alexeyab() {
    # AlexeyAB's pinned tree (verified by fetch_source.sh), built once per commit + make arguments.
    local tree commit sha make_line gpu blas variant key_text target
    tree=$(bash "$(dirname "${BASH_SOURCE[0]}")/fetch_source.sh" alexeyab-darknet) || die "no AlexeyAB source tree"
    commit=$(sed -n 's/^commit=//p' "$tree/.harness-source")
    sha=$(sed -n 's/^sha256=//p' "$tree/.harness-source")
    make_line=${HARNESS_ALEXEYAB_MAKE:-GPU=0 CUDNN=0 OPENCV=0 AVX=1 OPENMP=1 OPTS=-O3}
    read -ra make_args <<< "$make_line LIBSO=1"
    gpu=0; case " $make_line " in *" GPU=1 "*) gpu=1 ;; esac
    blas=$(blas_choice)
    [ "$gpu" = 1 ] && blas=none      # the GPU build runs its gemm on the GPU
    key_text="make=$make_line;gcc=$(gcc -dumpfullversion)"
    [ "$blas" = none ] || key_text+=";blas=$blas"
    case "$make_line" in *AVX=1*) key_text+=";cpu=$(grep -m1 'model name' /proc/cpuinfo | tr -s '\t' ' ' || true)" ;; esac
    if [ "$gpu" = 1 ]; then variant="gpu"; else variant="cpu"; fi
    if [ "$gpu" = 1 ] && [ -n "${CUDA_ARCH:-}" ]; then   # SM list, as for the pjreddie GPU build (docker/Dockerfile)
        local sm arch=""
        for sm in $CUDA_ARCH; do arch+=" -gencode arch=compute_${sm},code=[sm_${sm},compute_${sm}]"; done
        make_args+=("ARCH=${arch# }"); key_text+=";arch=$CUDA_ARCH"; variant="gpu-sm$(echo "$CUDA_ARCH" | tr ' ' '_')"
    fi
    target="$CACHE/darknet-alexeyab-${commit:0:8}-$variant-$(short_hash "$key_text")"
    already_built "$target" && return
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/darknet-alexeyab.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    cp -r "$tree/." "$WORK/"
    log "AlexeyAB ${commit:0:8}"
    if [ "$blas" = openblas ]; then
        # AlexeyAB's own CPU gemm vectorises only the untransposed case; training's backward passes
        # run plain loops (4.9x slower per YOLOv3-tiny-160 iteration here, docs/benchmarks.md).
        ensure_openblas
        use_cblas_gemm "$WORK"
        mapfile -t make_args < <(with_cblas_opts "${make_args[@]}")
    fi
    local seconds
    seconds=$(make_and_stage "$WORK" "$target" "$gpu" "${make_args[@]}")
    local opts="-Ofast (upstream Makefile)" arg
    for arg in "${make_args[@]}"; do case "$arg" in OPTS=*) opts=${arg#OPTS=} ;; esac; done
    publish "$target" "$seconds" fork=alexeyab commit="$commit" source_sha256="$sha" \
        source_origin="$(sed -n 's/^origin=//p' "$tree/.harness-source")" variant="$variant" \
        openmp="$(has_arg OPENMP=1 "${make_args[@]}")" avx="$(has_arg AVX=1 "${make_args[@]}")" \
        gpu="$([ "$gpu" = 1 ] && echo true || echo false)" opencv="$(has_arg OPENCV=1 "${make_args[@]}")" \
        blas="$blas" opts="$opts" key="$key_text" make_args="${make_args[*]}"
}

with_cblas_opts() {  # make arguments, one a line, with -DHARNESS_CBLAS added to OPTS= (upstream's -Ofast when none)
    local arg opts="OPTS=-Ofast"
    for arg in "$@"; do case "$arg" in OPTS=*) opts=$arg ;; *) echo "$arg" ;; esac; done
    echo "$opts -DHARNESS_CBLAS"
}

if [ "$FORK" = alexeyab ]; then
    [ "$DO_BUILD" = 1 ] && build_alexeyab
    exit 0
fi
[ "$DO_APT" = 1 ] && install_debian_binary
if [ "$DO_BUILD" = 1 ]; then
    build_variant
fi
