#!/usr/bin/env bash
# Real human speech for answering-machine detection (campaigns/amd.py): the test recordings in
# the pocketsphinx 5.1.1 source archive (CMU, BSD-2-Clause; LibriVox readings are public
# domain), converted to 16 kHz WAV in var/testdata/real/ (only when missing). Short phrases
# ("ten of clubs", digits) stand for a person answering; continuous readings for a voicemail
# greeting. The names match scripts/fetch_test_audio.sh's on the speech branch, so either
# script may have placed them. Install time only, never from tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PIP=${IVR_VENV:-$ROOT/.venv}/bin/pip
REAL=$ROOT/var/testdata/real
mkdir -p "$REAL"
[ -s "$REAL/ps_librivox_0930.wav" ] && [ -s "$REAL/ps_cards_005.wav" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PIP" download -q --no-deps --no-binary pocketsphinx -d "$tmp" "pocketsphinx==5.1.1" >/dev/null
tar -xzf "$tmp"/pocketsphinx-5.1.1.tar.gz -C "$tmp" --wildcards "*/test/data/*"
src=$tmp/pocketsphinx-5.1.1/test/data
raw() { sox -t raw -r 16000 -e signed -b 16 -c 1 "$src/$1" -r 16000 "$REAL/$2"; }
wav() { sox "$src/$1" -r 16000 -c 1 -b 16 "$REAL/$2"; }
raw goforward.raw ps_goforward.wav
raw something.raw ps_something.wav
raw numbers.raw ps_numbers.wav
raw tidigits/dhd.2934z.raw ps_tidigits_2934z.wav
for n in 001 002 003 004 005; do wav "cards/$n.wav" "ps_cards_$n.wav"; done
for n in 0870 0880 0890 0920 0930; do
  wav "librivox/sense_and_sensibility_01_austen_64kb-$n.wav" "ps_librivox_$n.wav"
done
wav forever/input_2_16k.wav ps_forever_2.wav
wav forever/input_4_16k.wav ps_forever_4.wav
echo "[fetch_amd_audio] $REAL/ps_*.wav" >&2
