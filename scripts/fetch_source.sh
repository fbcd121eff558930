#!/usr/bin/env bash
# fetch_source.sh NAME: print the directory of a verified source tree of framework NAME at the commit
# pinned in scripts/sources.lock, unpacked once into <cache>/src/NAME-COMMIT (cached: later calls cost
# nothing). Two ways to get it, tried in this order:
#   1. HARNESS_SOURCES=DIR holding NAME-COMMIT.tar.gz (an offline mirror, e.g. ../shared/vendor):
#      its sha256 must equal the pinned one, else the build stops naming file, found and expected hash.
#   2. git fetch of exactly COMMIT from the pinned repository (GitHub): git checks every object against
#      the commit id, and HEAD must equal COMMIT.
# Neither reachable: one error naming both ways. The tree's stamp (.harness-source) records name,
# commit, origin and the tarball's sha256 for `harness doctor` and provenance.json.
# Environment: HARNESS_CACHE (cache root), HARNESS_SOURCES (mirror folder), HARNESS_SOURCES_LOCK (lock file).
set -euo pipefail

log() { printf '[fetch_source] %s\n' "$*" >&2; }
die() { printf '[fetch_source] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: fetch_source.sh NAME (one of the names in scripts/sources.lock)"
NAME=$1
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOCK=${HARNESS_SOURCES_LOCK:-$SCRIPT_DIR/sources.lock}
CACHE=${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leukonet-harness}

read -r _ REPO COMMIT SHA256 PREFIX < <(awk -v n="$NAME" '$1 == n && $1 !~ /^#/ {print; exit}' "$LOCK") \
    || die "no source named '$NAME' in $LOCK"
[[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]] || die "$LOCK: '$NAME' has no 40-hex commit"
[[ "$SHA256" =~ ^[0-9a-f]{64}$ ]] || die "$LOCK: '$NAME' has no 64-hex sha256"

DEST="$CACHE/src/$NAME-$COMMIT"
STAMP="$DEST/.harness-source"
if [ -f "$STAMP" ] && grep -qx "commit=$COMMIT" "$STAMP"; then
    log "$NAME $COMMIT: cached at $DEST"
    echo "$DEST"; exit 0
fi

TMP=$(mktemp -d "$CACHE/src/.fetch-$NAME.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE/src"; mktemp -d "$CACHE/src/.fetch-$NAME.XXXXXX"; })
trap 'rm -rf "$TMP"' EXIT

from_mirror() {
    local tarball="$HARNESS_SOURCES/$NAME-$COMMIT.tar.gz" found
    [ -f "$tarball" ] || return 1
    found=$(sha256sum "$tarball" | cut -d' ' -f1)
    [ "$found" = "$SHA256" ] || die "sha256 mismatch for $tarball: found $found, $LOCK pins $SHA256 (a damaged or different tarball; not built)"
    tar -xzf "$tarball" -C "$TMP"
    [ -d "$TMP/$PREFIX-$COMMIT" ] || die "$tarball does not hold $PREFIX-$COMMIT/"
    mv "$TMP/$PREFIX-$COMMIT" "$TMP/tree"
    ORIGIN="mirror:$tarball"
}

from_git() {
    command -v git >/dev/null || return 1
    git init -q "$TMP/tree" && git -C "$TMP/tree" remote add origin "$REPO" || return 1
    GIT_TERMINAL_PROMPT=0 git -C "$TMP/tree" fetch -q --depth 1 origin "$COMMIT" >&2 || return 1
    git -C "$TMP/tree" -c advice.detachedHead=false checkout -q FETCH_HEAD || return 1
    [ "$(git -C "$TMP/tree" rev-parse HEAD)" = "$COMMIT" ] || die "$REPO gave $(git -C "$TMP/tree" rev-parse HEAD) for $COMMIT"
    rm -rf "$TMP/tree/.git"
    ORIGIN="git:$REPO@$COMMIT"
}

ORIGIN=""
if [ -n "${HARNESS_SOURCES:-}" ] && from_mirror; then :
elif from_git; then :
else
    die "cannot get $NAME at $COMMIT: ${HARNESS_SOURCES:+no $NAME-$COMMIT.tar.gz in HARNESS_SOURCES=$HARNESS_SOURCES, and }git fetch from $REPO failed. Either put the tarball (sha256 $SHA256) in a folder and set HARNESS_SOURCES to it, or allow access to github.com."
fi
log "$NAME $COMMIT from $ORIGIN"
printf 'name=%s\ncommit=%s\nrepository=%s\norigin=%s\nsha256=%s\n' "$NAME" "$COMMIT" "$REPO" "$ORIGIN" "$SHA256" > "$TMP/tree/.harness-source"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$TMP/tree" "$DEST"
echo "$DEST"
