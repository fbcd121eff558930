#!/usr/bin/env bash
# docker_base.sh [NAME]: a Debian 12 (bookworm) base image made here with mmdebstrap and loaded with
# `docker import`, for machines that cannot pull debian:bookworm-slim from Docker Hub.
# Default NAME: leukonet-harness-base:bookworm. Build the images on it with
#   make docker-image BASE_IMAGE=leukonet-harness-base:bookworm   (what `make docker-base` prints).
# The image's apt sources are written the way debian:bookworm-slim has them (deb822,
# /etc/apt/sources.list.d/debian.sources), so scripts/install_darknet.sh can add its deb-src entry.
# Labels: org.opencontainers.image.base.name (how it was made), leukonet.base.* (mmdebstrap version,
# suite, mirror, date). Skipped when NAME exists (FORCE=1 rebuilds).
# Environment: DOCKER (client, default docker), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

NAME=${1:-leukonet-harness-base:bookworm}
DOCKER=${DOCKER:-docker}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { printf '[docker_base] %s\n' "$*" >&2; }

if [ "${FORCE:-0}" != 1 ] && "$DOCKER" image inspect "$NAME" >/dev/null 2>&1; then
  log "$NAME already exists (FORCE=1 to rebuild)"; echo "$NAME"; exit 0
fi
command -v mmdebstrap >/dev/null || { log "mmdebstrap not installed (apt-get install mmdebstrap)"; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

started=$SECONDS
log "mmdebstrap --variant=minbase $SUITE ($MIRROR)"
mmdebstrap --variant=minbase --quiet \
  --customize-hook="rm -f \"\$1/etc/apt/sources.list\"" \
  --customize-hook="upload $work/debian.sources /etc/apt/sources.list.d/debian.sources" \
  --customize-hook="rm -rf \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/*.bin" \
  "$SUITE" "$work/rootfs.tar" "$MIRROR"
sha=$(sha256sum "$work/rootfs.tar" | cut -d' ' -f1)
"$DOCKER" import \
  -c 'CMD ["bash"]' \
  -c 'ENV LANG=C.UTF-8' \
  -c "LABEL org.opencontainers.image.base.name=mmdebstrap:$SUITE-minbase" \
  -c "LABEL leukonet.base.made-by=\"mmdebstrap $(mmdebstrap --version | awk '{print $2}') --variant=minbase $SUITE $MIRROR\"" \
  -c "LABEL leukonet.base.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -c "LABEL leukonet.base.rootfs-sha256=$sha" \
  "$work/rootfs.tar" "$NAME" >/dev/null
log "imported $NAME in $((SECONDS - started)) s (rootfs sha256 $sha)"
echo "$NAME"
