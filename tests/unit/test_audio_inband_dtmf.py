"""In-band DTMF: exact decoding of noisy/twisted/short-gap sequences, no digits from speech."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from audio import g711
from audio.inband_dtmf import InbandDtmfDetector, classify_block
from audio.tones import add_noise, dtmf_sequence, dtmf_tone, silence, tone
from audio.wavio import load_wav
from speaker_id.testdata import beckett, pyannote_sample

KEYS = "1234567890*#ABCD"


def detect(pcm: np.ndarray, frame: int = 160) -> str:
    det = InbandDtmfDetector()
    out: list[str] = []
    for i in range(0, len(pcm), frame):
        out += det.feed(pcm[i:i + frame])
    return "".join(out)


@pytest.mark.parametrize("twist_db", [-6.0, 0.0, 6.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_twisted_short_gap_sequence_decodes_exactly(twist_db: float, seed: int) -> None:
    # 40 ms tones, 40 ms gaps (the ITU Q.24 minimums), 15 dB SNR, a lead-in that puts tone
    # edges at an arbitrary phase of the 102-sample analysis blocks
    pcm = dtmf_sequence(KEYS, on_s=0.040, off_s=0.040, twist_db=twist_db, dbfs=-15.0,
                        lead_s=0.1 + seed * 0.0047)
    assert detect(add_noise(pcm, 15.0, seed=seed)) == KEYS


def test_through_g711_and_odd_frame_sizes() -> None:
    pcm = add_noise(dtmf_sequence("0123456789", on_s=0.06, off_s=0.05, dbfs=-20.0), 20.0)
    ulaw = g711.ulaw_decode(g711.ulaw_encode(pcm))
    alaw = g711.alaw_decode(g711.alaw_encode(pcm))
    assert detect(ulaw) == "0123456789"
    assert detect(alaw, frame=240) == "0123456789"  # 30 ms packets
    assert detect(pcm, frame=37) == "0123456789"


def test_long_press_is_one_digit_and_repeats_need_a_gap() -> None:
    assert detect(np.concatenate([silence(0.1), dtmf_tone("5", 2.0), silence(0.1)])) == "5"
    two = np.concatenate([silence(0.1), dtmf_tone("7", 0.1), silence(0.045), dtmf_tone("7", 0.1),
                          silence(0.1)])
    assert detect(two) == "77"
    # a drop-out shorter than the minimum gap (2 blocks, 25.5 ms) inside one press is not a new
    # digit, wherever it falls in the analysis blocks
    for lead in (0.1, 0.1037, 0.1071):
        blip = np.concatenate([silence(lead), dtmf_tone("7", 0.1), silence(0.006),
                               dtmf_tone("7", 0.1), silence(0.1)])
        assert detect(blip) == "7"


def test_rule_min_duration_rejects_20ms_tone() -> None:
    assert detect(np.concatenate([silence(0.1), dtmf_tone("3", 0.020), silence(0.1)])) == ""


def test_rule_twist_limit() -> None:
    assert detect(dtmf_sequence("9", on_s=0.2, twist_db=14.0)) == ""
    assert detect(dtmf_sequence("9", on_s=0.2, twist_db=-14.0)) == ""


def test_rule_energy_floor() -> None:
    assert detect(dtmf_sequence("4", on_s=0.2, dbfs=-50.0)) == ""
    assert detect(dtmf_sequence("4", on_s=0.2, dbfs=-30.0)) == "4"


def test_rule_single_tone_and_relative_peak() -> None:
    assert detect(tone(697, 0.3)) == ""
    assert detect(tone((697, 770, 1209), 0.3, dbfs=-12)) == ""  # two row tones at once


def test_rule_pair_power_fraction() -> None:
    # a DTMF pair under an equally loud 2.5 kHz tone: the pair is < 70 % of the power
    x = tone((852, 1477, 2500), 0.3, dbfs=(-12, -12, -9))
    assert detect(x) == ""


def test_rule_second_harmonic() -> None:
    # 1209 Hz with a strong 2418 Hz harmonic, like a voiced sound, plus a row tone
    x = tone((697, 1209, 2418), 0.3, dbfs=(-12, -12, -18))
    assert classify_block(x[:102].astype(float)) is None
    assert classify_block(tone((697, 1209), 0.1)[:102].astype(float)) == "1"


SPEECH_TEXT = ("Thank you for calling. For billing press one, for support press two. "
               "Your reference number is four seven one nine three five zero zero eight. "
               "One moment please while I transfer you to an agent.")


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["en", "en-us+f3", "en+m3", "en+f4", "de", "fr", "cmn"])
def test_espeak_speech_gives_no_digits(tmp_path: Path, voice: str) -> None:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), SPEECH_TEXT], check=True,
                   capture_output=True)
    pcm = load_wav(wav)
    assert len(pcm) > 8000 * 5
    assert detect(pcm) == ""
    assert detect(g711.ulaw_decode(g711.ulaw_encode(pcm))) == ""
    loud = np.clip(pcm.astype(np.int32) * 4, -32768, 32767).astype(np.int16)
    assert detect(loud) == ""


def test_second_human_speech_sample_gives_no_digits() -> None:
    # 30 s, two speakers in a room (pyannote's sample, fetched by scripts/fetch_test_audio.sh)
    pcm = load_wav(pyannote_sample())
    assert len(pcm) > 8000 * 25
    assert detect(pcm) == ""
    assert detect(g711.alaw_decode(g711.alaw_encode(pcm))) == ""


def test_human_speech_gives_no_digits() -> None:
    pcm = load_wav(beckett())
    assert len(pcm) > 8000 * 5
    assert detect(pcm) == ""
    # and DTMF mixed into real speech at ~0 dB is still heard
    digits = dtmf_sequence("42", on_s=0.1, off_s=0.1, dbfs=-12, lead_s=0.0)
    mix = pcm.copy()
    mix[16000:16000 + len(digits)] = np.clip(
        mix[16000:16000 + len(digits)].astype(np.int32) // 4 + digits, -32768, 32767)
    assert detect(mix) == "42"
