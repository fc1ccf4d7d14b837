"""``SpeakerService``: what the ``enroll_speaker``/``verify_speaker`` nodes, the CLI and the console
call. It satisfies ``flows.services.SpeakerVerifier`` with async methods (await them).

Each call runs entirely in an executor (resampling, VAD, the encoder and the database are all
blocking); the event loop only awaits. Outcomes follow the node's ports: ``match``, ``no_match``,
``not_enrolled``, ``insufficient_audio``, ``error``; enrolment answers ``enrolled``,
``insufficient_audio`` or ``error``. Every access is audited; no vector or score is ever logged.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from audio.pcm import SAMPLE_RATE_HZ, WIDEBAND_RATE_HZ, AudioFormatError, FloatAudio
from audio.resample import resample_float
from speaker_id.backends import EmbeddingBackend, cosine, mean_embedding
from speaker_id.fingerprint import fingerprint, fingerprint_distance
from speaker_id.quality import QualityGate, QualityReport, assess
from speaker_id.store import Sample, Voiceprint, VoiceprintStore

log = logging.getLogger(__name__)

DEFAULT_TENANT = "default"
DEFAULT_CONSENT_TEXT = "caller agreed to voiceprint enrolment for identity verification"
REPLAY_MAX_FP_BER = 0.33  # fingerprint bit error rate below this: same recording (other
# utterances of the same speaker measure ~0.46; a replay through G.711 ~0.03, with noise ~0.3)
REPLAY_MIN_COSINE = 0.95  # and embeddings this close
# each enrolment utterance vs the centroid of the others, per encoder (their cosine scales
# differ). GE2E: same speaker >= 0.74 on the real set, different speakers 0.41-0.78 (mean 0.52).
# CAM++ at 8 kHz: same speaker 0.56-0.87 (pairs), different speakers -0.11-0.51 (mean 0.17).
# Either way it catches a second voice, not a bad day.
MIN_ENROLL_CONSISTENCY = 0.65
ENROLL_CONSISTENCY = {"resemblyzer": 0.65, "campplus": 0.45}
PASSPHRASE_MIN_RATIO = 0.80


@dataclass(frozen=True, slots=True)
class VerifyResult:
    outcome: str  # match | no_match | not_enrolled | insufficient_audio | error
    score: float = 0.0
    threshold: float = 0.0
    reason: str = ""  # why not a match: too_short, noisy, replay, passphrase_mismatch, ...
    replay_suspected: bool = False
    quality: QualityReport | None = None


@dataclass(frozen=True, slots=True)
class EnrollResult:
    outcome: str  # enrolled | insufficient_audio | error
    score: float = 0.0  # consistency: lowest leave-one-out utterance-to-centroid cosine
    reason: str = ""
    utterances: int = 0  # utterances that passed the quality gate and were used
    quality: tuple[QualityReport, ...] = field(default=())


AudioIn = npt.NDArray[np.int16] | npt.NDArray[np.float32]


def to_encoder_audio(audio: AudioIn, rate: int) -> FloatAudio:
    """Engine PCM (int16) or float audio at ``rate`` -> 16 kHz float32 for the encoder."""
    arr = np.asarray(audio).reshape(-1)
    if arr.dtype == np.int16:
        x = arr.astype(np.float32) / 32768.0
    elif np.issubdtype(arr.dtype, np.floating):
        x = arr.astype(np.float32)
    else:
        raise AudioFormatError(f"audio dtype must be int16 PCM or float, got {arr.dtype}")
    return resample_float(x, rate, WIDEBAND_RATE_HZ)


def enrolment_consistency(vectors: Sequence[npt.NDArray[np.float32]]) -> float:
    """Lowest leave-one-out score: each utterance against the centroid of the others.

    Why leave-one-out: against a centroid that includes it, even a stranger's utterance scores
    high (two voices at 0.5 give 0.87 each), so a second speaker would go unnoticed.
    """
    if len(vectors) < 2:
        return 1.0
    return min(cosine(v, mean_embedding([w for j, w in enumerate(vectors) if j != i]))
               for i, v in enumerate(vectors))


_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def passphrase_matches(expected: str, transcript: str | None) -> bool:
    """The recogniser heard the passphrase: character similarity of the normalised texts.

    Character-level so it works for Chinese (no spaces) and tolerates one misrecognised word.
    """
    if not transcript:
        return False
    a = _NON_WORD.sub("", expected.lower())
    b = _NON_WORD.sub("", transcript.lower())
    return bool(a) and difflib.SequenceMatcher(None, a, b).ratio() >= PASSPHRASE_MIN_RATIO


class SpeakerService:
    """Enrol, verify and delete voiceprints of one deployment (tenant per call, default given)."""

    def __init__(
        self,
        store: VoiceprintStore,
        backend: EmbeddingBackend | Callable[[], EmbeddingBackend],
        *,
        threshold: float,
        gate: QualityGate | None = None,
        tenant_id: str = DEFAULT_TENANT,
        input_rate: int = SAMPLE_RATE_HZ,
        reject_replay: bool = True,
        executor: Executor | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine in [-1, 1], got {threshold}")
        self.store = store
        self._backend: EmbeddingBackend | None = None
        self._factory: Callable[[], EmbeddingBackend] | None = None
        if callable(getattr(backend, "embed", None)):
            self._backend = backend  # type: ignore[assignment]
        else:
            self._factory = backend  # type: ignore[assignment]
        self._backend_lock = threading.Lock()
        self.threshold = threshold
        self.gate = gate or QualityGate()
        self.tenant_id = tenant_id
        self.input_rate = input_rate
        self.reject_replay = reject_replay
        self._executor = executor
        self._wall = wall_clock

    @property
    def backend(self) -> EmbeddingBackend:
        with self._backend_lock:
            if self._backend is None:
                assert self._factory is not None
                self._backend = self._factory()
            return self._backend

    async def warm_up(self) -> None:
        """Load the encoder now (in the executor), so the first caller does not wait 1-3 s."""
        await self._run(lambda: self.backend)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- enrolment -----------------------------------------------------------------------------

    async def enroll(self, person_id: str, audio_list: Sequence[AudioIn | None], *,
                     tenant_id: str | None = None, rate: int | None = None,
                     passphrase: str | None = None, consent_method: str = "ivr",
                     consent_text: str = DEFAULT_CONSENT_TEXT, actor: str = "ivr") -> EnrollResult:
        """Enrol (or re-enrol) from one or more utterances; records consent in the same write.

        The flow must have asked for consent before calling this; ``consent_text`` says what
        the person agreed to.
        """
        tenant = tenant_id or self.tenant_id
        try:
            return await self._run(partial(
                self._enroll_sync, tenant, person_id, list(audio_list),
                rate=rate or self.input_rate, passphrase=passphrase,
                consent_method=consent_method, consent_text=consent_text, actor=actor))
        except Exception as e:  # the node needs an outcome, never a crash
            log.error("speaker enroll failed tenant=%s person=%s: %s", tenant, person_id,
                      type(e).__name__)
            await self._run(self._audit_quietly, tenant, person_id, "enroll", actor, "error")
            return EnrollResult("error", reason=type(e).__name__)

    def _enroll_sync(self, tenant: str, person_id: str, audio_list: list[AudioIn | None], *,
                     rate: int, passphrase: str | None, consent_method: str, consent_text: str,
                     actor: str) -> EnrollResult:
        if not consent_text.strip():
            self.store.audit(tenant, person_id, "enroll", actor=actor,
                         outcome="no_consent", now=self._wall())
            return EnrollResult("error", reason="no_consent")
        clips = [to_encoder_audio(a, rate) for a in audio_list if a is not None and len(a)]
        reports = tuple(assess(c, self.gate) for c in clips)
        good = [c for c, q in zip(clips, reports, strict=True) if q.ok]
        speech = sum(q.speech_s for q in reports if q.ok)
        if not good or speech < self.gate.min_enroll_speech_s:
            problems = sorted({p for q in reports for p in q.problems}) or ["too_short"]
            self.store.audit(tenant, person_id, "enroll", actor=actor,
                         outcome="insufficient_audio", now=self._wall())
            return EnrollResult("insufficient_audio", reason=",".join(problems),
                                utterances=len(good), quality=reports)
        backend = self.backend
        vectors = [backend.embed(c) for c in good]
        centroid = mean_embedding(vectors)
        consistency = enrolment_consistency(vectors)
        if consistency < ENROLL_CONSISTENCY.get(backend.name, MIN_ENROLL_CONSISTENCY):
            self.store.audit(tenant, person_id, "enroll", actor=actor,
                         outcome="inconsistent", now=self._wall())
            return EnrollResult("insufficient_audio", score=consistency, reason="inconsistent",
                                utterances=len(good), quality=reports)
        now = self._wall()
        self.store.save(tenant, person_id,
                        Voiceprint(centroid, backend.name, len(good), speech, passphrase),
                        consent_method=consent_method, consent_text=consent_text, actor=actor,
                        now=now)
        for c, v in zip(good, vectors, strict=True):
            self.store.add_sample(tenant, person_id, "enroll",
                                  Sample(v, fingerprint(c, WIDEBAND_RATE_HZ)), now)
        self.store.audit(tenant, person_id, "enroll", actor=actor,
                         outcome="enrolled", now=now)
        return EnrollResult("enrolled", score=consistency, utterances=len(good), quality=reports)

    # --- verification --------------------------------------------------------------------------

    async def verify(self, person_id: str, audio: AudioIn | None, *, tenant_id: str | None = None,
                     rate: int | None = None, transcript: str | None = None,
                     actor: str = "ivr") -> VerifyResult:
        """Score ``audio`` against the person's voiceprint and decide against the threshold.

        If the person enrolled with a passphrase, ``transcript`` (the recogniser's text of the
        same utterance) must match it too, so a voice alone does not pass a text-dependent check.
        """
        tenant = tenant_id or self.tenant_id
        try:
            return await self._run(partial(
                self._verify_sync, tenant, person_id, audio, rate=rate or self.input_rate,
                transcript=transcript, actor=actor))
        except Exception as e:  # the node needs an outcome, never a crash
            log.error("speaker verify failed tenant=%s person=%s: %s", tenant, person_id,
                      type(e).__name__)
            await self._run(self._audit_quietly, tenant, person_id, "verify", actor, "error")
            return VerifyResult("error", threshold=self.threshold, reason=type(e).__name__)

    def _verify_sync(self, tenant: str, person_id: str, audio: AudioIn | None, *, rate: int,
                     transcript: str | None, actor: str) -> VerifyResult:
        vp = self.store.load(tenant, person_id)
        if vp is None:
            self.store.audit(tenant, person_id, "verify", actor=actor,
                         outcome="not_enrolled", now=self._wall())
            return VerifyResult("not_enrolled", threshold=self.threshold)
        clip = to_encoder_audio(audio, rate) if audio is not None else np.zeros(0, np.float32)
        report = assess(clip, self.gate)
        if not report.ok:
            self.store.audit(tenant, person_id, "verify", actor=actor,
                             outcome="insufficient_audio", now=self._wall())
            return VerifyResult("insufficient_audio", threshold=self.threshold,
                                reason=",".join(report.problems), quality=report)
        backend = self.backend
        if vp.backend != backend.name:
            self.store.audit(tenant, person_id, "verify", actor=actor,
                         outcome="error", now=self._wall())
            return VerifyResult("error", threshold=self.threshold, reason="backend_mismatch",
                                quality=report)
        emb = backend.embed(clip)
        score = cosine(emb, vp.embedding)
        fp = fingerprint(clip, WIDEBAND_RATE_HZ)
        replay = any(cosine(emb, s.embedding) >= REPLAY_MIN_COSINE
                     and fingerprint_distance(fp, s.fingerprint) < REPLAY_MAX_FP_BER
                     for s in self.store.samples(tenant, person_id))
        now = self._wall()
        self.store.add_sample(tenant, person_id, "verify", Sample(emb, fp), now)
        reason = ""
        if score < self.threshold:
            reason = "score"
        elif vp.passphrase and not passphrase_matches(vp.passphrase, transcript):
            reason = "passphrase_mismatch"
        elif replay and self.reject_replay:
            reason = "replay"
        outcome = "no_match" if reason else "match"
        self.store.audit(tenant, person_id, "verify", actor=actor,
                         outcome=outcome if not replay else f"{outcome}:replay", now=now)
        return VerifyResult(outcome, score=score, threshold=self.threshold, reason=reason,
                            replay_suspected=replay, quality=report)

    # --- deletion and audit --------------------------------------------------------------------

    async def delete(self, person_id: str, *, tenant_id: str | None = None,
                     actor: str = "ivr") -> bool:
        """Erase on request: voiceprint and samples go, consent is marked withdrawn."""
        tenant = tenant_id or self.tenant_id
        return bool(await self._run(self._delete_sync, tenant, person_id, actor))

    def _delete_sync(self, tenant: str, person_id: str, actor: str) -> bool:
        now = self._wall()
        existed = self.store.delete(tenant, person_id, now)
        self.store.audit(tenant, person_id, "delete", actor=actor,
                         outcome="deleted" if existed else "not_enrolled", now=now)
        return existed

    def _audit_quietly(self, tenant: str, person_id: str, action: str, actor: str,
                       outcome: str) -> None:
        try:
            self.store.audit(tenant, person_id, action, actor=actor, outcome=outcome,
                             now=self._wall())
        except Exception as e:  # auditing an error must not raise another
            log.error("speaker audit write failed: %s", type(e).__name__)
