"""WAV loading (any rate/width/channels -> 8 kHz mono), writing, resampling and tones."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from audio import tones
from audio.resample import resample, to_16k
from audio.wavio import (
    WavError,
    load_wav,
    read_wav,
    read_wav_float,
    read_wav_samples,
    write_stereo_wav,
    write_wav,
)


def _tone_power_at(x: np.ndarray, rate: int, f: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spec[np.argmin(np.abs(freqs - f))])


def test_resample_keeps_passband_kills_alias() -> None:
    t = np.arange(16000) / 16000
    x = (8000 * np.sin(2 * np.pi * 1000 * t) + 8000 * np.sin(2 * np.pi * 5000 * t))
    y = resample(x.astype(np.int16), 16000, 8000)
    assert len(y) == 8000
    keep = _tone_power_at(y, 8000, 1000)
    alias = _tone_power_at(y, 8000, 3000)  # 5 kHz would fold to 3 kHz without the filter
    assert 20 * np.log10(keep / alias) > 50


def test_resample_rates_and_errors() -> None:
    x = tones.tone(440, 1.0, rate=44100)
    assert len(resample(x, 44100, 8000)) == 8000
    assert len(to_16k(tones.tone(440, 0.5))) == 8000
    assert np.array_equal(resample(x, 44100, 44100), x)
    with pytest.raises(ValueError, match="src_rate=0"):
        resample(x, 0, 8000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((10, 2)), 8000, 16000)


def test_resample_clips_instead_of_wrapping() -> None:
    x = np.array([32767, -32768] * 400, dtype=np.int16)
    y = resample(x, 8000, 16000)
    assert y.max() <= 32767 and y.min() >= -32768
    assert y.dtype == np.int16


def test_write_and_load_mono_round_trip(tmp_path: Path) -> None:
    x = tones.tone(1000, 0.5)
    p = tmp_path / "m.wav"
    write_wav(p, x)
    assert np.array_equal(load_wav(p), x)


def test_stereo_two_leg(tmp_path: Path) -> None:
    left, right = tones.tone(500, 0.2), tones.tone(900, 0.3)
    p = tmp_path / "s.wav"
    write_stereo_wav(p, left, right)
    raw, ch, rate = read_wav_samples(p)
    assert (ch, rate) == (2, 8000)
    st = np.asarray(raw).reshape(-1, 2)
    assert np.array_equal(st[: len(left), 0], left)
    assert np.all(st[len(left):, 0] == 0)
    assert np.array_equal(st[:, 1], right)


@pytest.mark.parametrize(("rate", "bits", "channels", "encoding"),
                         [(16000, 16, 1, "signed"), (44100, 24, 2, "signed"),
                          (22050, 8, 1, "unsigned"), (48000, 32, 1, "floating-point")])
def test_load_any_format_via_sox(tmp_path: Path, rate: int, bits: int, channels: int,
                                 encoding: str) -> None:
    src = tmp_path / "src.wav"
    write_wav(src, tones.tone(1000, 1.0, dbfs=-6), 8000)
    out = tmp_path / "conv.wav"
    subprocess.run(["sox", "-D", str(src), "-r", str(rate), "-b", str(bits), "-c", str(channels),
                    "-e", encoding, str(out)], check=True, capture_output=True)
    y = load_wav(out)
    assert abs(len(y) - 8000) <= 2
    ref = tones.tone(1000, 1.0, dbfs=-6).astype(float)
    mid = slice(1000, 7000)
    rms_ratio = np.sqrt(np.mean(y[mid].astype(float) ** 2) / np.mean(ref[mid] ** 2))
    assert 0.95 < rms_ratio < 1.05


def test_load_espeak_output(tmp_path: Path) -> None:
    p = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(p), "press one"], check=True, capture_output=True)
    y = load_wav(p)
    assert y.dtype == np.int16 and len(y) > 4000 and np.abs(y).max() > 1000


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "prompt.wav"
    junk.write_bytes(b"ID3 this is an mp3 really" * 4)
    with pytest.raises(WavError, match=r"prompt\.wav: not a WAV"):
        load_wav(junk)
    with pytest.raises(WavError, match=r"missing\.wav: cannot read"):
        load_wav(tmp_path / "missing.wav")
    cut = tmp_path / "cut.wav"
    write_wav(cut, tones.tone(1000, 0.1))
    cut.write_bytes(cut.read_bytes()[:30])
    with pytest.raises(WavError, match=r"cut\.wav"):
        load_wav(cut)


def test_dtmf_tone_frequencies_and_twist() -> None:
    x = tones.dtmf_tone("5", 0.5, twist_db=6.0)
    lo = _tone_power_at(x, 8000, 770)
    hi = _tone_power_at(x, 8000, 1336)
    assert 5.5 < 20 * np.log10(hi / lo) < 6.5
    with pytest.raises(ValueError, match="'X'"):
        tones.dtmf_tone("X")


def test_beep_and_noise() -> None:
    b = tones.beep(0.25)
    assert len(b) == 2000 and abs(int(b[0])) < 50 and abs(int(b[-1])) < 50
    x = tones.tone(1000, 1.0, dbfs=-10)
    n = tones.add_noise(x, 15.0, seed=3).astype(float) - x
    snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean(n**2))
    assert 14.5 < snr < 15.5


def test_wave_module_reads_what_we_write(tmp_path: Path) -> None:
    p = tmp_path / "w.wav"
    write_wav(p, tones.tone(300, 0.1), rate=16000)
    with wave.open(str(p)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)


def _sox(src: Path, out: Path, *args: str) -> Path:
    subprocess.run(["sox", "-D", str(src), *args, str(out)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("args", [("-b", "8", "-e", "unsigned"), ("-b", "24"), ("-b", "32"),
                                  ("-e", "mu-law"), ("-e", "a-law"), ("-b", "32", "-e", "float")])
def test_one_reader_for_every_area(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Media (load_wav), recognisers (read_wav) and voiceprints (read_wav_float) read the same
    file the same way: 8/24/32-bit, float and G.711 WAVs alike (they used to disagree)."""
    src = tmp_path / "src.wav"
    ref = tones.tone(700, 0.5, dbfs=-6)
    write_wav(src, ref, 8000)
    f = _sox(src, tmp_path / "f.wav", *args)
    pcm, rate = read_wav(f)
    flt, frate = read_wav_float(f)
    assert rate == frate == 8000
    assert np.array_equal(load_wav(f), pcm)
    assert np.allclose(flt * 32768.0, pcm, atol=1.0)
    rms = np.sqrt(np.mean(ref.astype(float) ** 2))
    err = np.sqrt(np.mean((pcm.astype(float) - ref) ** 2)) / rms
    assert err < 0.05  # G.711 and 8-bit quantisation, nothing worse


def test_read_wav_from_bytes_and_streams(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    write_wav(p, tones.tone(300, 0.1))
    data = p.read_bytes()
    a, _ = read_wav(data)
    b, _ = read_wav(io.BytesIO(data))
    assert np.array_equal(a, b) and np.array_equal(a, tones.tone(300, 0.1))


def test_float_samples_are_written_as_full_scale_int16(tmp_path: Path) -> None:
    p = tmp_path / "f.wav"
    write_wav(p, np.array([0.5, -0.5, 1.0, -1.0], dtype=np.float32))
    pcm, _ = read_wav(p)
    assert pcm.tolist() == [16384, -16384, 32767, -32768]
