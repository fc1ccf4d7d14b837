"""listen_turn with a scripted recogniser and the energy VAD, on the fake clock.

Frames carry their own timestamps so endpointing runs without sleeping; the fake clock only
drives the wall-clock watchdog and the pool timeouts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

import numpy as np
import pytest

from asr.endpoint import EndpointConfig
from asr.ledger import TurnLatency
from asr.listen import ListenConfig, listen_turn
from asr.pool import InferencePool
from asr.recognizer import Engine, RecognizerError, RecognizerOptions, Stream
from asr.vad import EnergyVad
from core.call import AudioFrameEvent, CallEvent, DtmfEvent, HangupEvent
from core.clock import FakeClock

LOUD = (np.sin(np.arange(160) * 0.3) * 8000).astype(np.int16)
QUIET = np.zeros(160, np.int16)


class ScriptedStream(Stream):
    def __init__(self, engine: ScriptedEngine) -> None:
        super().__init__("scripted", 8000)
        self.engine = engine

    def _accept(self, pcm: np.ndarray) -> str | None:
        self.engine.fed += len(pcm)
        return "par" if self.engine.partials else None

    def _final(self) -> tuple[str, float, tuple[str, ...]]:
        if self.engine.block is not None:
            self.engine.entered.set()
            self.engine.block.wait(10)
        if self.engine.fail:
            raise RuntimeError("model exploded")
        return self.engine.result


class ScriptedEngine(Engine):
    name = "scripted"

    def __init__(self) -> None:
        self.fed = 0
        self.partials = False
        self.fail = False
        self.block: threading.Event | None = None
        self.entered = threading.Event()  # set when finish is running (and stuck)
        self.open_error: RecognizerError | None = None
        self.result: tuple[str, float, tuple[str, ...]] = ("billing", 0.9, ("filling",))

    def open(self, options: RecognizerOptions) -> Stream:
        if self.open_error:
            raise self.open_error
        return ScriptedStream(self)


async def frames(
    pattern: list[np.ndarray],
    t0: float,
    then_hang: bool = False,
    tail: list[CallEvent] | None = None,
) -> AsyncIterator[CallEvent]:
    for i, f in enumerate(pattern):
        yield AudioFrameEvent(f, t0 + (i + 1) * 0.02)
        await asyncio.sleep(0)
    for ev in tail or []:
        yield ev
    if then_hang:
        await asyncio.Event().wait()


@pytest.fixture
def pool(fake_clock: FakeClock):
    p = InferencePool(2, clock=fake_clock)
    yield p
    p.shutdown()


CFG = ListenConfig(
    endpoint=EndpointConfig(
        hangover_ms=200, no_input_timeout_s=3.0, max_speech_s=4.0, max_listen_s=6.0
    )
)


async def test_utterance_gives_text_timings_and_ledger(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    eng = ScriptedEngine()
    t0 = fake_clock.now()
    turn = TurnLatency("c1", "menu", budget_ms=350)
    pattern = [QUIET] * 25 + [LOUD] * 50 + [QUIET] * 30
    r = await listen_turn(
        frames(pattern, t0, then_hang=True),
        eng,
        EnergyVad(),
        pool,
        fake_clock,
        config=CFG,
        turn=turn,
    )
    assert r.status == "ok" and r.text == "billing" and r.confidence == 0.9
    assert r.alternatives == ("filling",)
    assert r.timings["speech_start"] == pytest.approx(t0 + 0.5)
    assert r.timings["speech_end"] == pytest.approx(t0 + 1.5)
    assert turn.marks["speech_end"] == pytest.approx(t0 + 1.5)
    assert "recognizer_final" in turn.marks
    # pre-roll (300 ms, holding the first 4 loud frames) + the rest of the speech from the frame
    # that confirmed it + the hangover frames up to the decision reached the model
    assert eng.fed == 160 * (15 + 46 + 10)
    assert r.audio is not None and len(r.audio) == eng.fed


async def test_silence_is_no_input(fake_clock: FakeClock, pool: InferencePool) -> None:
    r = await listen_turn(
        frames([QUIET] * 200, fake_clock.now()),
        ScriptedEngine(),
        EnergyVad(),
        pool,
        fake_clock,
        config=CFG,
    )
    assert r.status == "no_input" and r.text == ""


async def test_dead_stream_no_input_from_watchdog(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    task = asyncio.ensure_future(
        listen_turn(
            frames([], fake_clock.now(), then_hang=True),
            ScriptedEngine(),
            EnergyVad(),
            pool,
            fake_clock,
            config=CFG,
        )
    )
    for _ in range(200):  # the recogniser opens in a real thread; wait for the watchdog to sleep
        if fake_clock.pending:
            break
        await asyncio.sleep(0.005)
    await fake_clock.advance(2.9)
    assert not task.done()
    await fake_clock.advance(0.2)
    r = await asyncio.wait_for(task, 2)
    assert r.status == "no_input"


async def test_never_ending_speech_hits_hard_limit(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    t0 = fake_clock.now()
    r = await listen_turn(
        frames([LOUD] * 1000, t0), ScriptedEngine(), EnergyVad(), pool, fake_clock, config=CFG
    )
    assert r.status == "timeout" and r.text == "billing"  # what was heard is still returned
    assert r.timings["endpoint_at"] == pytest.approx(t0 + 4.0)


async def test_dtmf_ends_listen(fake_clock: FakeClock, pool: InferencePool) -> None:
    tail: list[CallEvent] = [DtmfEvent("3", "rfc4733", 100, fake_clock.now())]
    r = await listen_turn(
        frames([QUIET] * 5, fake_clock.now(), True, tail),
        ScriptedEngine(),
        EnergyVad(),
        pool,
        fake_clock,
        config=CFG,
    )
    assert r.status == "dtmf" and r.digit == "3"


async def test_dtmf_ignored_when_not_allowed(fake_clock: FakeClock, pool: InferencePool) -> None:
    cfg = ListenConfig(endpoint=CFG.endpoint, allow_dtmf=False)
    tail: list[CallEvent] = [DtmfEvent("3", "rfc4733", 100, fake_clock.now())]
    r = await listen_turn(
        frames([QUIET] * 200, fake_clock.now(), False, tail),
        ScriptedEngine(),
        EnergyVad(),
        pool,
        fake_clock,
        config=cfg,
    )
    assert r.status == "no_input"


async def test_hangup(fake_clock: FakeClock, pool: InferencePool) -> None:
    tail: list[CallEvent] = [HangupEvent("normal", "caller", fake_clock.now())]
    r = await listen_turn(
        frames([LOUD] * 20, fake_clock.now(), True, tail),
        ScriptedEngine(),
        EnergyVad(),
        pool,
        fake_clock,
        config=CFG,
    )
    assert r.status == "hangup"


async def test_stuck_recogniser_goes_over_budget(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    eng = ScriptedEngine()
    eng.block = threading.Event()
    pattern = [LOUD] * 30 + [QUIET] * 15
    task = asyncio.ensure_future(
        listen_turn(
            frames(pattern, fake_clock.now(), then_hang=True),
            eng,
            EnergyVad(),
            pool,
            fake_clock,
            config=CFG,
        )
    )
    for _ in range(500):  # real threads: wait until finish is running in the pool, stuck
        if eng.entered.is_set():
            break
        await asyncio.sleep(0.01)
    assert eng.entered.is_set() and not task.done()
    await fake_clock.advance(CFG.final_timeout_s + 0.1)
    r = await asyncio.wait_for(task, 2)
    eng.block.set()
    assert r.status == "error" and r.error is not None and r.error.startswith("over_budget:")


async def test_recogniser_failure_is_error(fake_clock: FakeClock, pool: InferencePool) -> None:
    eng = ScriptedEngine()
    eng.fail = True
    r = await listen_turn(
        frames([LOUD] * 30 + [QUIET] * 15, fake_clock.now(), True),
        eng,
        EnergyVad(),
        pool,
        fake_clock,
        config=CFG,
    )
    assert r.status == "error" and "model exploded" in (r.error or "")
    assert r.error.startswith("recognizer:")  # type: ignore[union-attr]


async def test_open_failure_is_error(fake_clock: FakeClock, pool: InferencePool) -> None:
    eng = ScriptedEngine()
    eng.open_error = RecognizerError("scripted", "word 'zzx' is not in the dictionary")
    r = await listen_turn(
        frames([], fake_clock.now()), eng, EnergyVad(), pool, fake_clock, config=CFG
    )
    assert r.status == "error" and "zzx" in (r.error or "")


async def test_partials_reported(fake_clock: FakeClock, pool: InferencePool) -> None:
    eng = ScriptedEngine()
    eng.partials = True
    seen: list[str] = []
    await listen_turn(
        frames([LOUD] * 30 + [QUIET] * 15, fake_clock.now(), True),
        eng,
        EnergyVad(),
        pool,
        fake_clock,
        config=CFG,
        on_partial=lambda text, at: seen.append(text),
    )
    assert seen and set(seen) == {"par"}


async def test_release_jitter_does_not_end_the_turn_early(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    """A 120 ms pause between words, with a 250 ms loop stall inside it: release times say
    370 ms of silence (> 200 ms hangover), the audio says 120 ms. The audio wins."""
    t0 = fake_clock.now()
    pattern = [LOUD] * 30 + [QUIET] * 6 + [LOUD] * 30 + [QUIET] * 20

    async def jittery() -> AsyncIterator[CallEvent]:
        for i, f in enumerate(pattern):
            late = 0.25 if i >= 31 else 0.0
            yield AudioFrameEvent(f, t0 + (i + 1) * 0.02 + late)
        await asyncio.Event().wait()

    eng = ScriptedEngine()
    r = await listen_turn(jittery(), eng, EnergyVad(), pool, fake_clock, config=CFG)
    assert r.status == "ok"
    assert r.timings["speech_end"] == pytest.approx(t0 + 66 * 0.02 + 0.25)
    assert eng.fed >= 160 * 66  # both words reached the recogniser


def test_listen_config_from_node_spec() -> None:
    from asr.listen import engine_for, listen_config
    from core.call import ListenSpec

    menu = ListenSpec(
        mode="keywords",
        keywords=("billing", "sales"),
        endpoint_silence_ms=500,
        no_input_timeout_s=4.0,
        max_speech_s=6.0,
        budget_ms=400,
        allow_dtmf=False,
    )
    cfg = listen_config(menu, grammar_hangover_ms=200)
    assert cfg.endpoint.hangover_ms == 200  # menus take the shorter wait
    assert cfg.endpoint.no_input_timeout_s == 4.0 and cfg.endpoint.max_listen_s == 10.0
    assert cfg.final_timeout_s == 0.4 and cfg.allow_dtmf is False
    assert cfg.options.keywords == ("billing", "sales")
    free = listen_config(ListenSpec(endpoint_silence_ms=700), final_timeout_s=2.0)
    assert free.endpoint.hangover_ms == 700 and free.final_timeout_s == 2.0
    assert engine_for(menu) == "whisper"  # English menus: whisper n-best matched to the grammar
    assert engine_for(menu, default_engine="pocketsphinx") == "pocketsphinx"
    assert engine_for(ListenSpec()) == "whisper"
    assert engine_for(ListenSpec(language="zh-CN")) == "whisper-base"
    assert engine_for(ListenSpec(language="cmn", mode="keywords", keywords=("余额",))) == \
        "whisper-base"
    assert engine_for(ListenSpec(language="auto")) == "whisper-base"
    assert engine_for(ListenSpec(language="ko-KR", mode="keywords", keywords=("예",))) == "vosk"
    assert engine_for(ListenSpec(engine="vosk")) == "vosk"
    with pytest.raises(ValueError, match="needs grammar"):
        listen_config(ListenSpec(mode="grammar"))
    # asr.grammar_prompt reaches the recogniser (off unless configured)
    assert cfg.options.grammar_prompt is False
    assert listen_config(menu, grammar_prompt=True).options.grammar_prompt is True


async def test_queue_that_cannot_meet_the_budget_is_over_budget_at_once(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    """Final decodes on this lane take ~5 s (seen before): with a 1.5 s budget the turn says
    over_budget right at the endpoint instead of after the caller waited 1.5 s in silence."""
    eng = ScriptedEngine()
    pool.note_cost("scripted", 5.0)
    assert pool.expected_wait_s("scripted") == 5.0
    pattern = [QUIET] * 10 + [LOUD] * 30 + [QUIET] * 30
    t0 = fake_clock.now()
    r = await listen_turn(frames(pattern, t0, then_hang=True), eng, EnergyVad(), pool,
                          fake_clock, config=CFG)
    assert r.status == "error" and r.error is not None
    assert r.error.startswith("over_budget:") and "budget 1.5 s" in r.error
    assert r.timings["expected_wait_ms"] == 5000.0
    assert fake_clock.now() - t0 < 1.5  # nobody waited for the budget to run out
    pool.note_cost("scripted", 0.1)  # decodes got fast again: the average follows
    assert pool.expected_wait_s("scripted") < 5.0


async def test_pool_measures_final_decodes(fake_clock: FakeClock, pool: InferencePool) -> None:
    eng = ScriptedEngine()
    pattern = [QUIET] * 10 + [LOUD] * 30 + [QUIET] * 30
    r = await listen_turn(frames(pattern, fake_clock.now(), then_hang=True), eng, EnergyVad(),
                          pool, fake_clock, config=CFG)
    assert r.status == "ok"
    await asyncio.sleep(0.01)  # the worker's bookkeeping callback reaches the loop
    assert 0.0 < pool.expected_wait_s("scripted") < 1.0


async def test_keyword_result_is_the_keyword_as_the_node_wrote_it(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    """A keyword grammar spells its sentences normalised (两 -> 二, numerals read out), so the
    recogniser returns 二室一厅 for the keyword 两室一厅; the menu node looks for its keywords in
    the text it gets and must find the one the caller said."""
    from flows.textmatch import KeywordIntentMatcher

    eng = ScriptedEngine()
    eng.result = ("二室一厅", 0.8, ("一万零八十六",))
    keywords = ("两室一厅", "10086", "查询余额")
    cfg = replace(CFG, options=RecognizerOptions(mode="keywords", keywords=keywords,
                                                 language="zh-CN"))
    pattern = [QUIET] * 25 + [LOUD] * 50 + [QUIET] * 30
    r = await listen_turn(frames(pattern, fake_clock.now(), then_hang=True), eng, EnergyVad(),
                          pool, fake_clock, config=cfg)
    assert (r.status, r.text, r.alternatives) == ("ok", "两室一厅", ("10086",))
    intents = {"rooms": ["两室一厅"], "hotline": ["10086"], "balance": ["查询余额"]}
    assert KeywordIntentMatcher().match(r.text, intents) == "rooms"
    # free text is the recogniser's own: nothing to map back
    eng.result = ("二室一厅", 0.8, ())
    r = await listen_turn(frames(pattern, fake_clock.now(), then_hang=True), eng, EnergyVad(),
                          pool, fake_clock, config=CFG)
    assert r.text == "二室一厅"


async def test_phrase_list_grammar_result_is_the_phrase_as_written(
    fake_clock: FakeClock, pool: InferencePool
) -> None:
    """A grammar written as a phrase list (one per line, or JSON) is normalised like keywords,
    so a ``listen`` node in grammar mode got 二室一厅 for its phrase 两室一厅 and missed its
    intent; a JSGF grammar's sentences are its own words and pass unchanged."""
    eng = ScriptedEngine()
    pattern = [QUIET] * 25 + [LOUD] * 50 + [QUIET] * 30
    for grammar in ("两室一厅\n10086\n查询余额", '["两室一厅", "10086", "查询余额"]'):
        eng.result = ("二室一厅", 0.8, ("一零零八六",))
        cfg = replace(CFG, options=RecognizerOptions(mode="grammar", grammar=grammar,
                                                     language="zh-CN"))
        r = await listen_turn(frames(pattern, fake_clock.now(), then_hang=True), eng,
                              EnergyVad(), pool, fake_clock, config=cfg)
        assert (r.status, r.text, r.alternatives) == ("ok", "两室一厅", ("10086",)), grammar
    eng.result = ("one two", 0.8, ())
    jsgf = "#JSGF V1.0;\ngrammar d;\npublic <d> = one two | three ;\n"
    cfg = replace(CFG, options=RecognizerOptions(mode="grammar", grammar=jsgf))
    r = await listen_turn(frames(pattern, fake_clock.now(), then_hang=True), eng, EnergyVad(),
                          pool, fake_clock, config=cfg)
    assert r.text == "one two"
