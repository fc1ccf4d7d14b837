"""Building the voiceprint service from the configuration, for the engine and the CLI alike.

``speaker_id`` is a library that never reads the configuration; this is where ``[speaker]`` and
``[storage]`` become a :class:`~speaker_id.service.SpeakerService`.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from speaker_id.backends import load_backend
from speaker_id.quality import QualityGate
from speaker_id.service import SpeakerService
from speaker_id.store import VoiceprintStore, parse_key
from storage.db import open_database


def open_speaker_service(settings: Settings, **kwargs: Any) -> SpeakerService:
    """Open the database and key from config; the encoder loads on first use."""
    sp = settings.speaker
    key = parse_key(sp.encryption_key)
    db = open_database(settings.storage.url)
    gate = QualityGate(min_speech_s=sp.min_speech_s, min_enroll_speech_s=sp.min_enroll_speech_s,
                       max_clipped_ratio=sp.max_clipped_ratio, min_level_dbfs=sp.min_level_dbfs,
                       min_snr_db=sp.min_snr_db)
    return SpeakerService(VoiceprintStore(db, key),
                          lambda: load_backend(sp.backend, sp.model_path, sp.threads),
                          threshold=sp.threshold, gate=gate, tenant_id=sp.tenant_id,
                          reject_replay=sp.reject_replay, **kwargs)
