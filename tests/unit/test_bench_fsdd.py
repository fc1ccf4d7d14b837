"""The FSDD benchmark's own logic: which files it reads, the interval it quotes, the turn it
builds. Its figures are only as good as these."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.bench_fsdd import (
    FsddFile,
    bench_menus,
    caller_turn,
    edge_db,
    parse_name,
    wilson,
)


def test_parse_name() -> None:
    assert parse_name("7_jackson_32.wav") == FsddFile(7, "jackson", 32)
    assert parse_name("0_yweweler_0.wav") == FsddFile(0, "yweweler", 0)
    assert parse_name("0_george_0.wav").word == "zero"  # type: ignore[union-attr]
    for bad in ("README.md", "10_theo_1.wav", "7_jackson_32.wav.bak", "7_Jackson_3.wav",
                "7_jackson.wav", "x_theo_1.wav"):
        assert parse_name(bad) is None, bad


def test_wilson_interval() -> None:
    lo, hi = wilson(0, 100)  # none seen: the interval still has width (normal: [0, 0])
    assert lo == 0.0 and hi == pytest.approx(0.0370, abs=1e-4)
    lo, hi = wilson(50, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    lo, hi = wilson(3, 115)  # the stop-29 false rejects
    assert lo == pytest.approx(0.0089, abs=1e-4) and hi == pytest.approx(0.0739, abs=1e-4)
    assert all(np.isnan(wilson(0, 0)))


def test_caller_turn_pads_with_line_noise() -> None:
    word = np.full(800, 3000, np.int16)
    turn = caller_turn(word, 8000, 0.3, 0.25, noise_dbfs=-60.0, seed=1)
    assert len(turn) == 2400 + 800 + 2000
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(turn[:2400].astype(float) ** 2)) / 32768)
    assert -63 < rms_dbfs < -57
    assert abs(float(turn[2400:3200].mean()) - 3000) < 5
    louder = caller_turn(word, 8000, 0.3, 0.25, noise_dbfs=-90.0, seed=1, level_dbfs=-26.0)
    assert abs(float(louder[2400:3200].mean()) - 32768 * 10 ** (-26 / 20)) < 5


def test_every_digit_has_a_menu_with_and_without_it() -> None:
    with_it, without = bench_menus()
    for word in ("zero", "one", "six", "nine"):
        assert with_it[word] and without[word]
        assert all(word in menu for menu in with_it[word])
        assert all(word not in menu for menu in without[word])


def test_edge_db_tells_a_word_cut_mid_sound() -> None:
    t = np.arange(4000) / 8000
    tone = np.sin(2 * np.pi * 300 * t)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.1)  # 100 ms fade in and out
    whole = (8000 * tone * ramp).astype(np.int16)
    onset_cut = (8000 * tone * np.where(t < 0.25, 1.0, ramp)).astype(np.int16)  # fades out only
    assert edge_db(whole, 8000) < -15
    assert -1 < edge_db(onset_cut, 8000) <= 0
    assert -1 < edge_db(onset_cut[::-1].copy(), 8000) <= 0  # the coda cut instead
    assert edge_db(np.zeros(10, np.int16), 8000) == 0.0  # too short to tell: counted as cut
