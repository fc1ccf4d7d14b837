"""SpeakerService end to end: the real CAM++ encoder (ONNX) on real human speech, in engine form
(8 kHz int16 after G.711), through the encrypted SQLite store."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from audio.g711 import telephone_band
from audio.pcm import Pcm, to_int16
from speaker_id.backends import BackendError, load_backend
from speaker_id.service import SpeakerService, passphrase_matches
from speaker_id.store import VoiceprintStore, generate_key, parse_key
from speaker_id.testdata import real_utterances
from storage.db import open_database

pytestmark = pytest.mark.models
THRESHOLD = 0.50  # CAM++ at 8 kHz: FAR 0.4 %, FRR 0 % on the real set (docs/speaker.md)


def _call_audio(audio: np.ndarray, rate: int) -> Pcm:
    """What the engine hands the service: 8 kHz int16 after a mu-law call leg."""
    return to_int16(telephone_band(audio, rate))


@pytest.fixture(scope="module")
def speech() -> dict[str, list[Pcm]]:
    return {label: [_call_audio(a, r) for a, r in utts]
            for label, utts in real_utterances().items()}


@pytest.fixture
def service(tmp_path: Path) -> SpeakerService:
    store = VoiceprintStore(open_database(f"sqlite:///{tmp_path / 'spk.sqlite'}"),
                            parse_key(generate_key()))
    return SpeakerService(store, load_backend("campplus"), threshold=THRESHOLD,
                          wall_clock=lambda: 1_700_000_000.0)


async def test_enrol_then_verify_same_speaker_matches(service: SpeakerService,
                                                      speech: dict[str, list[Pcm]]) -> None:
    spk = speech["pyannote_spk91"]
    enrolled = await service.enroll("alice", spk[:2])
    assert enrolled.outcome == "enrolled", enrolled
    assert enrolled.utterances == 2
    result = await service.verify("alice", spk[2])
    assert result.outcome == "match", result
    assert result.score >= THRESHOLD
    assert not result.replay_suspected


async def test_other_speakers_do_not_match(service: SpeakerService,
                                           speech: dict[str, list[Pcm]]) -> None:
    await service.enroll("alice", speech["pyannote_spk91"][:2])
    for other in ("beckett", "pyannote_spk90", "arctic_a0007"):
        result = await service.verify("alice", speech[other][1 if other == "pyannote_spk90"
                                                             else 0])
        assert result.outcome == "no_match", (other, result)
        assert result.reason == "score"
        assert result.score < THRESHOLD


async def test_half_a_second_is_insufficient_audio(service: SpeakerService,
                                                   speech: dict[str, list[Pcm]]) -> None:
    await service.enroll("alice", speech["pyannote_spk91"][:2])
    clip = speech["pyannote_spk91"][2][:4000]  # 0.5 s at 8 kHz
    result = await service.verify("alice", clip)
    assert result.outcome == "insufficient_audio"
    assert "too_short" in result.reason
    assert (await service.verify("alice", None)).outcome == "insufficient_audio"


async def test_short_enrolment_is_insufficient(service: SpeakerService,
                                               speech: dict[str, list[Pcm]]) -> None:
    result = await service.enroll("bob", [speech["beckett"][0][:4000]])
    assert result.outcome == "insufficient_audio"
    assert (await service.verify("bob", speech["beckett"][1])).outcome == "not_enrolled"


async def test_not_enrolled(service: SpeakerService, speech: dict[str, list[Pcm]]) -> None:
    result = await service.verify("nobody", speech["beckett"][0])
    assert result.outcome == "not_enrolled"


async def test_deletion_on_request(service: SpeakerService,
                                   speech: dict[str, list[Pcm]]) -> None:
    await service.enroll("alice", speech["pyannote_spk91"][:2])
    assert await service.delete("alice") is True
    assert (await service.verify("alice", speech["pyannote_spk91"][2])).outcome == "not_enrolled"
    assert await service.delete("alice") is False
    actions = [(e.action, e.outcome) for e in service.store.audit_log("default", "alice")]
    assert actions == [("enroll", "enrolled"), ("delete", "deleted"),
                       ("verify", "not_enrolled"), ("delete", "not_enrolled")]


async def test_replayed_recording_is_flagged(service: SpeakerService,
                                             speech: dict[str, list[Pcm]]) -> None:
    spk = speech["pyannote_spk91"]
    await service.enroll("alice", spk[:2])
    first = await service.verify("alice", spk[2])
    assert first.outcome == "match" and not first.replay_suspected
    # the same recording again, a little later in the stream and quieter
    again = np.concatenate([np.zeros(1200, np.int16), (spk[2] // 2).astype(np.int16)])
    second = await service.verify("alice", again)
    assert second.replay_suspected
    assert second.outcome == "no_match" and second.reason == "replay"
    # an enrolment recording played back is a replay too
    assert (await service.verify("alice", spk[0])).replay_suspected


async def test_passphrase_must_be_said_too(service: SpeakerService,
                                           speech: dict[str, list[Pcm]]) -> None:
    spk = speech["pyannote_spk91"]
    await service.enroll("alice", spk[:2], passphrase="my voice is my password")
    wrong = await service.verify("alice", spk[2], transcript="what is my balance")
    assert wrong.outcome == "no_match" and wrong.reason == "passphrase_mismatch"
    assert wrong.score >= THRESHOLD  # the voice alone would have passed


def test_passphrase_matching() -> None:
    assert passphrase_matches("My voice is my password", "my voice is my password.")
    assert passphrase_matches("我的声音就是密码", "我的声音就是密码")
    assert not passphrase_matches("my voice is my password", "open the door")
    assert not passphrase_matches("my voice is my password", None)


async def test_tenants_are_isolated(service: SpeakerService,
                                    speech: dict[str, list[Pcm]]) -> None:
    await service.enroll("alice", speech["pyannote_spk91"][:2], tenant_id="bank-a")
    result = await service.verify("alice", speech["pyannote_spk91"][2], tenant_id="bank-b")
    assert result.outcome == "not_enrolled"


async def test_backend_failure_is_error_outcome(tmp_path: Path,
                                                speech: dict[str, list[Pcm]]) -> None:
    def broken() -> object:
        raise BackendError("model folder missing")

    store = VoiceprintStore(open_database(f"sqlite:///{tmp_path / 'b.sqlite'}"),
                            parse_key(generate_key()))
    svc = SpeakerService(store, broken, threshold=THRESHOLD)  # type: ignore[arg-type]
    result = await svc.enroll("alice", speech["pyannote_spk91"][:2])
    assert result.outcome == "error" and result.reason == "BackendError"


async def test_scores_and_vectors_never_logged(service: SpeakerService,
                                               speech: dict[str, list[Pcm]],
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await service.enroll("alice", speech["pyannote_spk91"][:2])
    result = await service.verify("alice", speech["pyannote_spk91"][2])
    text = caplog.text
    assert f"{result.score:.3f}" not in text and f"{result.score}" not in text


def test_unknown_backend_and_missing_model_path() -> None:
    with pytest.raises(BackendError, match="unknown"):
        load_backend("nope")
    with pytest.raises(BackendError, match="model_path"):
        load_backend("speechbrain")
    with pytest.raises(BackendError, match="hyperparams.yaml"):
        load_backend("speechbrain", "/nonexistent/ecapa")
    with pytest.raises(BackendError, match="ONNX"):
        load_backend("onnx", "/nonexistent/model.onnx")


async def test_inference_does_not_block_the_event_loop(service: SpeakerService,
                                                       speech: dict[str, list[Pcm]]) -> None:
    import asyncio

    from core.tasks import spawn

    await service.enroll("alice", speech["pyannote_spk91"][:2])
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    task = spawn(ticker(), "test-ticker")
    result = await service.verify("alice", speech["pyannote_spk91"][2])
    done = True
    await task
    assert result.outcome == "match"
    assert ticks > 10  # the loop kept turning while the encoder ran in the executor


async def test_from_settings_warm_up_and_key_required(tmp_path: Path,
                                                      speech: dict[str, list[Pcm]]) -> None:
    from app.config import load_settings
    from app.speaker_setup import open_speaker_service
    from speaker_id.store import EncryptionKeyError

    env = {"IVR_STORAGE__URL": f"sqlite:///{tmp_path / 'cfg.sqlite'}",
           "IVR_SPEAKER__THRESHOLD": "0.8", "IVR_SPEAKER__TENANT_ID": "bank-a"}
    with pytest.raises(EncryptionKeyError, match="encryption_key"):
        open_speaker_service(load_settings(environ=env))
    env["IVR_SPEAKER__ENCRYPTION_KEY"] = generate_key()
    svc = open_speaker_service(load_settings(environ=env))
    await svc.warm_up()
    assert (svc.threshold, svc.tenant_id) == (0.8, "bank-a")
    assert (await svc.enroll("alice", speech["pyannote_spk91"][:2])).outcome == "enrolled"
    assert svc.store.load("bank-a", "alice") is not None


async def test_is_the_flows_speaker_verifier(service: SpeakerService,
                                             speech: dict[str, list[Pcm]]) -> None:
    from flows.services import SPEAKER_OUTCOMES, SpeakerVerifier, call_service

    assert isinstance(service, SpeakerVerifier)
    enrolled = await call_service(service.enroll, "alice", speech["pyannote_spk91"][:2])
    assert enrolled.outcome == "enrolled"
    result = await call_service(service.verify, "alice", speech["pyannote_spk91"][2])
    assert result.outcome in SPEAKER_OUTCOMES and result.outcome == "match"


async def test_enrolment_with_two_voices_is_refused(service: SpeakerService,
                                                    speech: dict[str, list[Pcm]]) -> None:
    mixed = [speech["pyannote_spk91"][0], speech["pyannote_spk91"][1], speech["beckett"][0]]
    result = await service.enroll("alice", mixed)
    assert result.outcome == "insufficient_audio" and result.reason == "inconsistent"
    assert result.score < 0.65
    assert service.store.load("default", "alice") is None
    same = await service.enroll("alice", speech["beckett"][:3])
    assert same.outcome == "enrolled" and same.score >= 0.65


async def test_wrong_audio_dtype_is_error_outcome(service: SpeakerService,
                                                  speech: dict[str, list[Pcm]]) -> None:
    await service.enroll("alice", speech["pyannote_spk91"][:2])
    result = await service.verify("alice", speech["pyannote_spk91"][2].astype(np.int32))
    assert result.outcome == "error" and result.reason == "AudioFormatError"
