#!/usr/bin/env bash
# Build Asterisk once per machine for the AMI backend's tests, from the sources in the shared
# asterisk folder (no download). The build lands outside the work tree, in a cache keyed by the
# source tarball's hash, so every worktree and every CI run on this machine reuses it:
#     ${IVR_ASTERISK_CACHE:-/var/cache/ivr-asterisk}/<first 16 hex of sha256(asterisk-src.tar.gz)>
# A lock makes concurrent callers (two pytest workers, bootstrap + a test) build it only once; a
# stamp file marks a finished build, so a build killed halfway is wiped and redone.
# Usage: scripts/asterisk.sh            build if needed, print the prefix
#        scripts/asterisk.sh --prefix   print the prefix without building (exit 1 when absent)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${IVR_ASTERISK_SRC:-}
if [ -z "$SRC" ]; then
  for d in "$ROOT/../shared/asterisk" "$ROOT/../../shared/asterisk" /work/shared/asterisk; do
    [ -f "$d/asterisk-src.tar.gz" ] && { SRC=$(cd "$d" && pwd); break; }
  done
fi
[ -n "$SRC" ] && [ -f "$SRC/asterisk-src.tar.gz" ] || {
  echo "asterisk sources not found: set IVR_ASTERISK_SRC to the folder with asterisk-src.tar.gz" >&2
  exit 2
}
CACHE=${IVR_ASTERISK_CACHE:-/var/cache/ivr-asterisk}
KEY=$(sha256sum "$SRC/asterisk-src.tar.gz" | cut -c1-16)
PREFIX="$CACHE/$KEY"
if [ "${1:-}" = "--prefix" ]; then
  [ -f "$PREFIX/.built" ] && { echo "$PREFIX"; exit 0; }
  exit 1
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/$KEY.lock"
flock 9
if [ ! -f "$PREFIX/.built" ]; then
  rm -rf "$PREFIX"
  echo "[asterisk] building into $PREFIX (about 3 minutes on 2 cores)" >&2
  nice -n 10 bash "$SRC/build.sh" "$PREFIX" >&2
  date -u +%FT%TZ > "$PREFIX/.built"
fi
echo "$PREFIX"
