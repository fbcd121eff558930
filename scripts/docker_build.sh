#!/usr/bin/env bash
# docker_build.sh cpu|gpu [TAG]: build a target of docker/Dockerfile (default tag leukonet-harness:TARGET).
# Used by `make docker-image` / `make docker-image-gpu` and by the tests that need an image.
#  1. Base image: BASE_IMAGE (default: debian:bookworm-slim when it is here or can be pulled, else
#     the local Debian 12 base of scripts/docker_base.sh, made once: Docker Hub unreachable).
#  2. Framework sources: the tarballs scripts/sources.lock names are copied from HARNESS_SOURCES
#     (default ../shared/vendor, as scripts/setup.sh) into docker/sources/ in the build context;
#     inside the build scripts/fetch_source.sh checks their sha256 (or fetches GitHub by commit).
#  3. Inputs hash: sha256 over the target, build args, base image id and every file of the build
#     context. An image labelled with the same leukonet.inputs.sha256 is reused (tagged TAG)
#     instead of rebuilt; FORCE=1 rebuilds. Docker's layer cache serves partial changes.
#  4. `docker build` with the classic builder (DOCKER_BUILDKIT=0: what Debian's docker.io 20.10
#     has without buildx) and --network host (works with a daemon started with --bridge=none).
# Environment: DOCKER (client, default docker), BASE_IMAGE, CUDA_ARCH_LIST, CUDA_SOURCE (gpu),
# HARNESS_SOURCES, HARNESS_DOCKER_CA_DIR (extra CA certificates to trust: docker/ca-certificates/),
# FORCE=1, DOCKER_BUILD_LOG (file for the build output; default: stdout).
# Prints the image tag on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?usage: docker_build.sh cpu|gpu [TAG]}
case "$TARGET" in cpu|gpu) ;; *) echo "docker_build.sh: target must be cpu or gpu" >&2; exit 2 ;; esac
TAG=${2:-leukonet-harness:$TARGET}
DOCKER=${DOCKER:-docker}
log() { printf '[docker_build] %s\n' "$*" >&2; }

if [ -z "${BASE_IMAGE:-}" ]; then
  if "$DOCKER" image inspect debian:bookworm-slim >/dev/null 2>&1 \
     || timeout 60 "$DOCKER" pull -q debian:bookworm-slim >/dev/null 2>&1; then
    BASE_IMAGE=debian:bookworm-slim
  else
    log "debian:bookworm-slim not reachable (Docker Hub): using the local mmdebstrap base"
    BASE_IMAGE=$(DOCKER=$DOCKER bash scripts/docker_base.sh | tail -n1)
  fi
fi
base_id=$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_IMAGE") || { log "no base image $BASE_IMAGE"; exit 1; }

if [ -z "${HARNESS_SOURCES:-}" ] && [ -d ../shared/vendor ]; then HARNESS_SOURCES=$(cd ../shared/vendor && pwd); fi
staged=0
while read -r name _repo commit _sha _prefix; do
  case "$name" in ''|'#'*) continue ;; esac
  tarball="${HARNESS_SOURCES:-/nonexistent}/$name-$commit.tar.gz"
  if [ -f "$tarball" ]; then
    cmp -s "$tarball" "docker/sources/$(basename "$tarball")" 2>/dev/null || cp "$tarball" docker/sources/
    staged=$((staged + 1))
  fi
done < scripts/sources.lock
log "framework sources: $staged tarball(s) staged in docker/sources/ (others come from GitHub by commit)"

ca_dir=${HARNESS_DOCKER_CA_DIR-/usr/local/share/ca-certificates}
rm -f docker/ca-certificates/*.crt
if [ -n "$ca_dir" ] && ls "$ca_dir"/*.crt >/dev/null 2>&1; then
  cp "$ca_dir"/*.crt docker/ca-certificates/
  log "CA certificates from $ca_dir: $(cd docker/ca-certificates && ls ./*.crt | wc -l) (docker/ca-certificates/README.md)"
fi

commit_of() { awk -v n="$1" '$1 == n {print $3; exit}' scripts/sources.lock; }
CAFFE_COMMIT=$(commit_of weiliu89-caffe)
ALEXEYAB_COMMIT=$(commit_of alexeyab-darknet)
args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "CAFFE_COMMIT=$CAFFE_COMMIT"
      --build-arg "ALEXEYAB_COMMIT=$ALEXEYAB_COMMIT")
[ -n "${CUDA_ARCH_LIST:-}" ] && args+=(--build-arg "CUDA_ARCH_LIST=$CUDA_ARCH_LIST")
[ -n "${CUDA_SOURCE:-}" ] && args+=(--build-arg "CUDA_SOURCE=$CUDA_SOURCE")

context_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    { git ls-files -co --exclude-standard; ls docker/sources/*.tar.gz 2>/dev/null || true; } \
      | grep -vE '^(\.git|\.github|runs)/' | sort -u
  else
    find . -type f -not -path './.git/*' -not -path './runs/*' -printf '%P\n' | sort
  fi
}
inputs=$( { echo "target=$TARGET base=$base_id ${args[*]}"
            context_files | while IFS= read -r f; do [ -f "$f" ] && sha256sum "$f"; done; } | sha256sum | cut -c1-64)
args+=(--build-arg "INPUTS_SHA256=$inputs")

if [ "${FORCE:-0}" != 1 ]; then
  existing=$("$DOCKER" images -q --filter "label=leukonet.inputs.sha256=$inputs" | head -n1)
  if [ -n "$existing" ]; then
    "$DOCKER" tag "$existing" "$TAG"
    log "up to date: $TAG = $existing (inputs $inputs)"
    echo "$TAG"; exit 0
  fi
fi

log "building $TAG (target $TARGET, base $BASE_IMAGE, inputs ${inputs:0:16}…)"
started=$SECONDS
build=("$DOCKER" build --network host -f docker/Dockerfile --target "$TARGET" -t "$TAG" "${args[@]}" .)
if [ -n "${DOCKER_BUILD_LOG:-}" ]; then
  DOCKER_BUILDKIT=0 "${build[@]}" > "$DOCKER_BUILD_LOG" 2>&1 \
    || { tail -n 40 "$DOCKER_BUILD_LOG" >&2; log "build failed; full log: $DOCKER_BUILD_LOG"; exit 1; }
else
  DOCKER_BUILDKIT=0 "${build[@]}" >&2
fi
log "built $TAG in $((SECONDS - started)) s; size $("$DOCKER" image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.2f GB", $1/1e9}')"
echo "$TAG"
