"""Endpointing and barge-in state machines: pure, frame times passed in."""

from __future__ import annotations

import pytest

from asr.bargein import BargeInConfig, BargeInDetector
from asr.endpoint import EndpointConfig, Endpointer, EndpointKind

F = 0.02


def run(ep: Endpointer, probs: list[float], t0: float = 0.0):
    """Feed probabilities as consecutive 20 ms frames; return (event, frame index) of the first."""
    for i, p in enumerate(probs):
        ev = ep.feed(p, t0 + i * F)
        if ev is not None and ev.kind is not EndpointKind.SPEECH_START:
            return ev, i
    return None, len(probs)


def test_speech_then_silence_ends_after_hangover() -> None:
    ep = Endpointer(EndpointConfig(hangover_ms=300, min_speech_ms=100), started_at=0.0)
    probs = [0.0] * 10 + [0.9] * 50 + [0.0] * 40
    ev, i = run(ep, probs)
    assert ev is not None and ev.kind is EndpointKind.SPEECH_END
    assert ep.speech_start == pytest.approx(10 * F)
    assert ev.speech_at == pytest.approx(60 * F)  # end of the last speech frame
    assert ev.at - ev.speech_at == pytest.approx(0.300)  # exactly the hangover


def test_short_pause_inside_speech_does_not_end() -> None:
    ep = Endpointer(EndpointConfig(hangover_ms=300), started_at=0.0)
    probs = [0.9] * 20 + [0.0] * 10 + [0.9] * 20 + [0.0] * 20
    ev, _ = run(ep, probs)
    assert ev is not None and ev.speech_at == pytest.approx(50 * F)


def test_hysteresis_keeps_soft_tail_in_speech() -> None:
    ep = Endpointer(EndpointConfig(hangover_ms=100, start_threshold=0.5, end_threshold=0.3), 0.0)
    ev, _ = run(ep, [0.9] * 10 + [0.4] * 20 + [0.1] * 10)
    assert ev is not None and ev.speech_at == pytest.approx(30 * F)


def test_blip_shorter_than_min_speech_is_not_speech() -> None:
    ep = Endpointer(EndpointConfig(min_speech_ms=100, no_input_timeout_s=1.0), 0.0)
    ev, _ = run(ep, ([0.9] * 4 + [0.0] * 6) * 10)
    assert ev is not None and ev.kind is EndpointKind.NO_INPUT
    assert ep.speech_start is None


def test_silence_gives_no_input_at_timeout() -> None:
    ep = Endpointer(EndpointConfig(no_input_timeout_s=2.0), started_at=5.0)
    ev, _ = run(ep, [0.0] * 200, t0=5.0)
    assert ev is not None and ev.kind is EndpointKind.NO_INPUT
    assert ev.at == pytest.approx(7.0)


def test_never_ending_speech_hits_max_speech() -> None:
    ep = Endpointer(EndpointConfig(max_speech_s=3.0, max_listen_s=60.0), 0.0)
    ev, _ = run(ep, [0.9] * 1000)
    assert ev is not None and ev.kind is EndpointKind.MAX_DURATION
    assert ev.at == pytest.approx(3.0)


def test_wall_clock_limit_holds_without_frames() -> None:
    ep = Endpointer(EndpointConfig(no_input_timeout_s=5.0, max_listen_s=8.0), 0.0)
    run(ep, [0.9] * 50)  # speech started, then the RTP stream dies
    assert ep.tick(7.9) is None
    ev = ep.tick(8.0)
    assert ev is not None and ev.kind is EndpointKind.MAX_DURATION
    assert ep.next_deadline() == pytest.approx(8.0)


def test_no_events_after_done() -> None:
    ep = Endpointer(EndpointConfig(no_input_timeout_s=0.1), 0.0)
    run(ep, [0.0] * 10)
    assert ep.feed(0.9, 1.0) is None and ep.tick(100.0) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hangover_ms", -1),
        ("min_speech_ms", -5),
        ("no_input_timeout_s", 0),
        ("max_speech_s", -1),
        ("max_listen_s", 0),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        EndpointConfig(**{field: value})


def test_config_rejects_inverted_thresholds() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EndpointConfig(start_threshold=0.3, end_threshold=0.6)


def test_bargein_fires_once_after_min_speech() -> None:
    d = BargeInDetector(BargeInConfig(min_speech_ms=80))
    events = [d.on_frame(p, i * F) for i, p in enumerate([0.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])]
    fired = [e for e in events if e]
    assert len(fired) == 1
    assert fired[0].cause == "speech" and fired[0].speech_start == pytest.approx(F)
    assert fired[0].detect_ms == pytest.approx(80)


def test_bargein_ignores_short_noise() -> None:
    d = BargeInDetector(BargeInConfig(min_speech_ms=100))
    assert not [e for i, p in enumerate([0.9, 0.9, 0.0] * 20) if (e := d.on_frame(p, i * F))]


def test_bargein_word_count_needs_words_not_just_speech() -> None:
    d = BargeInDetector(BargeInConfig(min_words=2))
    for i in range(50):
        assert d.on_frame(0.9, i * F) is None
    assert d.on_partial("uh", 1.0) is None
    ev = d.on_partial("billing please", 1.2)
    assert ev is not None and ev.cause == "words" and ev.speech_start == 0.0


def test_bargein_dtmf_and_disabled_dtmf() -> None:
    assert BargeInDetector(BargeInConfig()).on_dtmf("5", 1.0).digit == "5"  # type: ignore[union-attr]
    assert BargeInDetector(BargeInConfig(dtmf=False)).on_dtmf("5", 1.0) is None


def test_bargein_rejects_negative_config() -> None:
    with pytest.raises(ValueError, match="min_speech_ms"):
        BargeInConfig(min_speech_ms=-1)
