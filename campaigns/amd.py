"""Answering-machine detection: who picked up, from the cadence of the first seconds. Pure.

A person answers with a short greeting ("喂？", "Hello?") and then waits for us; a voicemail
greeting is long and many-worded, ends in a beep, and never waits. A fax machine sends a pure
tone (CED, 2100 Hz; or CNG, 1100 Hz). After Asterisk's ``app_amd`` (initial silence, greeting
length, after-greeting silence, word count, maximum word length, total analysis time), plus tone
analysis for fax and the beep. Frames in (20 ms, 8 kHz int16, with a VAD decision), a decision
out; time is counted in frames, so a test or a replay decides exactly as a live call does.

Rules, checked every frame (defaults in :class:`AmdParams`):

* a fax tone for ``fax_tone_ms`` -> **fax**;
* no speech for ``initial_silence_ms`` -> **silence** (dead air: nobody speaks);
* one word longer than ``max_word_ms``, or speech since the first word longer than
  ``greeting_ms`` without a pause of ``after_greeting_silence_ms``, or more than ``max_words``
  words -> **machine**;
* speech, then ``after_greeting_silence_ms`` of silence (the person waits) -> **human**;
* ``total_ms`` without a decision -> **unknown**.

After **machine**, :meth:`MachineDetector.feed` goes on looking for the beep (a steady pure
tone of ``beep_min_ms`` or more between 400 and 2500 Hz, then quiet); ``beep_end_ms`` is when
it stopped: the moment to start speaking into the mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.pcm import Pcm

FRAME_MS = 20
_WINDOW = np.hanning(160).astype(np.float32)
_BIN_HZ = 8000 / 160  # 50 Hz per bin of a 160-point frame
TONE_MIN_DBFS = -45.0
BEEP_BAND_HZ = (400.0, 2500.0)  # above most voices' pitch (a sung vowel is tonal too)
FAX_TONES_HZ = (2100.0, 1100.0)  # CED (answering fax), CNG (calling fax)


@dataclass(frozen=True, slots=True)
class AmdParams:
    initial_silence_ms: int = 3500
    greeting_ms: int = 1800
    after_greeting_silence_ms: int = 800
    between_words_ms: int = 60  # a pause this long splits words
    min_word_ms: int = 100  # shorter speech bursts are noise, not words
    max_word_ms: int = 3500
    max_words: int = 4
    total_ms: int = 5000
    fax_tone_ms: int = 400  # CNG bursts are 0.5 s (+-15 %), CED lasts seconds
    min_voice_dbfs: float = -50.0  # quieter frames are line noise whatever the VAD says
    beep_min_ms: int = 120
    after_beep_quiet_ms: int = 300  # a beep is followed by quiet (a tone inside speech is not)
    after_beep_speech_ms: int = 200  # this much speech after a tone: it was not the beep
    # (a VAD's hang-over marks ~120 ms after any loud sound as speech)
    tonality: float = 0.8  # share of a frame's energy in its peak (+-1 bin) to be a tone


@dataclass(frozen=True, slots=True)
class AmdDecision:
    label: str  # human, machine, fax, silence, unknown
    at_ms: int  # when it was decided, from the first frame
    reason: str
    words: int
    greeting_ms: int


def _dbfs(frame: Pcm) -> float:
    x = frame.astype(np.float32)
    return float(20 * np.log10((np.sqrt(np.mean(x * x)) + 1e-9) / 32768.0))


def tone_of(frame: Pcm, tonality: float = 0.8) -> float | None:
    """The frequency (Hz) of a frame that is one steady pure tone, else None."""
    x = frame.astype(np.float32)
    if len(x) != 160 or _dbfs(frame) < TONE_MIN_DBFS:
        return None
    spectrum = np.abs(np.fft.rfft(x * _WINDOW)) ** 2
    spectrum[0] = 0.0
    total = float(spectrum.sum()) + 1e-9
    k = int(np.argmax(spectrum))
    peak = float(spectrum[max(0, k - 1):k + 2].sum())
    if peak / total < tonality:
        return None
    # refine the peak between bins (parabolic on log power) for a steadier frequency
    if 0 < k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-9)
        denom = a - 2 * b + c
        k_f = k + (0.5 * (a - c) / denom if denom else 0.0)
    else:
        k_f = float(k)
    return float(k_f * _BIN_HZ)


class MachineDetector:
    def __init__(self, params: AmdParams | None = None, *, wait_for_beep: bool = False) -> None:
        self.p = params or AmdParams()
        self.wait_for_beep = wait_for_beep
        self.t_ms = 0
        self.decision: AmdDecision | None = None
        self.beep_end_ms: int | None = None
        self.beep_hz: float | None = None
        self._first_voice_ms: int | None = None
        self._voice_run_ms = 0  # current speech burst
        self._silence_run_ms = 0
        self._words = 0
        self._word_counted = False
        self._tone_hz: float | None = None
        self._tone_run_ms = 0
        self._beep_candidate: tuple[int, float] | None = None  # (end ms, Hz) to be confirmed
        self._speech_after_tone_ms = 0

    @property
    def done(self) -> bool:
        """Nothing more to learn: decided, and not waiting for a beep (or the beep came)."""
        if self.decision is None:
            return False
        if self.decision.label == "machine" and self.wait_for_beep:
            return self.beep_end_ms is not None
        return True

    def feed(self, frame: Pcm, voiced: bool) -> AmdDecision | None:
        """One 20 ms frame and whether the VAD heard speech in it. Returns the decision on the
        frame it is made (then None again; see :attr:`decision`)."""
        self.t_ms += FRAME_MS
        tone = tone_of(frame, self.p.tonality)
        self._track_tone(tone)
        self._confirm_beep(voiced and tone is None)
        if self.decision is not None:
            return None
        if tone is not None or _dbfs(frame) < self.p.min_voice_dbfs:
            voiced = False  # a tone is not a word (and a beep ends a greeting)
        decided = self._step(voiced)
        if decided is not None:
            self.decision = decided
        return decided

    def keypress(self, digit: str) -> None:
        """A key was pressed: a person (machines do not press keys)."""
        if self.decision is None:
            self.decision = self._decide("human", f"key {digit} pressed")

    def _track_tone(self, hz: float | None) -> None:
        if hz is not None and self._tone_hz is not None and abs(hz - self._tone_hz) <= 40:
            self._tone_run_ms += FRAME_MS
            return
        ended_run, ended_hz = self._tone_run_ms, self._tone_hz
        self._tone_hz = hz
        self._tone_run_ms = FRAME_MS if hz is not None else 0
        lo, hi = BEEP_BAND_HZ
        if (ended_hz is not None and ended_run >= self.p.beep_min_ms and lo <= ended_hz <= hi
                and self.beep_end_ms is None and self.decision is not None
                and self.decision.label == "machine"):
            self._beep_candidate = (self.t_ms - FRAME_MS, ended_hz)
            self._speech_after_tone_ms = 0

    def _confirm_beep(self, speech: bool) -> None:
        if self._beep_candidate is None:
            return
        end, hz = self._beep_candidate
        if speech:
            self._speech_after_tone_ms += FRAME_MS
            if self._speech_after_tone_ms >= self.p.after_beep_speech_ms:
                self._beep_candidate = None  # the greeting goes on: that tone was in it
                return
        if self.t_ms - end >= self.p.after_beep_quiet_ms:
            self.beep_end_ms, self.beep_hz = end, hz
            self._beep_candidate = None

    def _decide(self, label: str, reason: str) -> AmdDecision:
        greeting = 0 if self._first_voice_ms is None else self.t_ms - self._first_voice_ms
        return AmdDecision(label, self.t_ms, reason, self._words, greeting)

    def _step(self, voiced: bool) -> AmdDecision | None:
        p = self.p
        if self._tone_hz is not None and self._tone_run_ms >= p.fax_tone_ms and any(
                abs(self._tone_hz - f) <= 40 for f in FAX_TONES_HZ):
            return self._decide("fax", f"{self._tone_hz:.0f} Hz tone")
        if voiced:
            self._voice_run_ms += FRAME_MS
            if self._silence_run_ms >= p.between_words_ms:
                self._word_counted = False  # a new word starts after a pause
            self._silence_run_ms = 0
            if not self._word_counted and self._voice_run_ms >= p.min_word_ms:
                self._words += 1
                self._word_counted = True
                if self._first_voice_ms is None:
                    self._first_voice_ms = self.t_ms - self._voice_run_ms
            if self._voice_run_ms > p.max_word_ms:
                return self._decide("machine", "one word longer than max_word_ms")
            if self._words > p.max_words:
                return self._decide("machine", f"more than {p.max_words} words")
            if (self._first_voice_ms is not None
                    and self.t_ms - self._first_voice_ms > p.greeting_ms):
                return self._decide("machine", "greeting longer than greeting_ms")
        else:
            self._silence_run_ms += FRAME_MS
            if self._silence_run_ms >= p.between_words_ms:
                self._voice_run_ms = 0
            if self._words == 0:
                if self.t_ms >= p.initial_silence_ms and self._first_voice_ms is None:
                    return self._decide("silence", "no speech within initial_silence_ms")
            elif self._silence_run_ms >= p.after_greeting_silence_ms:
                return self._decide("human", "short greeting, then silence")
        if self.t_ms >= p.total_ms:
            return self._decide("unknown", "no decision within total_ms")
        return None
