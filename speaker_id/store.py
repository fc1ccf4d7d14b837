"""Voiceprint storage: encrypted at rest, per tenant, with consent records and an access audit.

Voiceprints are biometric personal data (GDPR art. 9, PIPL "sensitive personal information"):
* the embedding (and the replay fingerprints) are sealed with AES-256-GCM; the tenant, person and
  row kind are the associated data, so a ciphertext copied onto another person's row fails to open;
* the key comes from config/env (``speaker.encryption_key``), never from the database;
* consent is a row written in the same transaction as the enrolment;
* deletion removes the voiceprint and the samples and marks consent withdrawn; the audit rows stay
  (they hold no biometric data: who, what, when, outcome);
* nothing here logs a vector, a score or a fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Float, Index, Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, Database

NONCE_BYTES = 12
KEY_BYTES = 32
MAX_SAMPLES_PER_PERSON = 20  # recent attempts kept for replay detection


class EncryptionKeyError(ValueError):
    """The encryption key is missing or malformed (names the config field)."""


class DecryptionError(ValueError):
    """A stored voiceprint could not be opened: wrong key, or a row moved between people."""


def generate_key() -> str:
    """A new random key in the form ``speaker.encryption_key`` takes (urlsafe base64, 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(value: str | None) -> bytes:
    if not value:
        raise EncryptionKeyError(
            "speaker.encryption_key is not set (env IVR_SPEAKER__ENCRYPTION_KEY; make one with "
            "`ivr speaker keygen`): voiceprints are never stored in clear")
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError) as e:
        raise EncryptionKeyError("speaker.encryption_key is not valid urlsafe base64") from e
    if len(raw) != KEY_BYTES:
        raise EncryptionKeyError(
            f"speaker.encryption_key must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


class Sealer:
    """AES-GCM with a random nonce per message; associated data binds a blob to its row."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag as e:
            raise DecryptionError("voiceprint ciphertext does not open with this key/row") from e


def pack_arrays(**arrays: npt.NDArray[np.generic]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def unpack_arrays(data: bytes) -> dict[str, npt.NDArray[np.generic]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class VoiceprintRow(Base):
    __tablename__ = "speaker_voiceprints"
    __table_args__ = (UniqueConstraint("tenant_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(128))
    backend: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    n_utterances: Mapped[int] = mapped_column(Integer)
    speech_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class SampleRow(Base):
    """Recent embeddings + audio fingerprints (sealed) of one person, for replay detection."""

    __tablename__ = "speaker_samples"
    __table_args__ = (Index("ix_speaker_samples_person", "tenant_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # enroll | verify
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class ConsentRow(Base):
    __tablename__ = "speaker_consents"
    __table_args__ = (Index("ix_speaker_consents_person", "tenant_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(64))  # e.g. "ivr-prompt", "cli", "web-form"
    text: Mapped[str] = mapped_column(String(1000))  # what the person agreed to
    given_at: Mapped[float] = mapped_column(Float)
    withdrawn_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditRow(Base):
    __tablename__ = "speaker_audit"
    __table_args__ = (Index("ix_speaker_audit_person", "tenant_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))  # enroll | verify | delete | read
    actor: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class Voiceprint:
    embedding: npt.NDArray[np.float32]
    backend: str
    n_utterances: int
    speech_s: float
    passphrase: str | None


@dataclass(frozen=True, slots=True)
class Sample:
    embedding: npt.NDArray[np.float32]
    fingerprint: npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    person_id: str
    action: str
    actor: str
    outcome: str
    at: float


@dataclass(frozen=True, slots=True)
class VoiceprintInfo:
    """What may be shown about a voiceprint: never the vector."""

    person_id: str
    backend: str
    n_utterances: int
    speech_s: float
    created_at: float
    updated_at: float
    consent_given_at: float | None


def _aad(tenant_id: str, person_id: str, kind: str) -> bytes:
    return f"{kind}\x00{tenant_id}\x00{person_id}".encode()


class VoiceprintStore:
    """Synchronous repository over ``storage.db``; the service calls it from its executor."""

    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._sealer = Sealer(key)

    def save(self, tenant_id: str, person_id: str, vp: Voiceprint, *, consent_method: str,
             consent_text: str, actor: str, now: float) -> None:
        """Enrol or re-enrol (replaces the voiceprint) and record consent, in one transaction."""
        blob = self._sealer.seal(
            pack_arrays(embedding=vp.embedding.astype(np.float32),
                        passphrase=np.array(vp.passphrase or "", dtype=np.str_)),
            _aad(tenant_id, person_id, "voiceprint"))
        with self._db.session() as s:
            row = s.scalar(select(VoiceprintRow).where(VoiceprintRow.tenant_id == tenant_id,
                                                       VoiceprintRow.person_id == person_id))
            if row is None:
                s.add(VoiceprintRow(tenant_id=tenant_id, person_id=person_id, backend=vp.backend,
                                    ciphertext=blob, n_utterances=vp.n_utterances,
                                    speech_s=vp.speech_s, created_at=now, updated_at=now))
            else:
                row.backend, row.ciphertext = vp.backend, blob
                row.n_utterances, row.speech_s, row.updated_at = vp.n_utterances, vp.speech_s, now
            s.add(ConsentRow(tenant_id=tenant_id, person_id=person_id, method=consent_method,
                             text=consent_text, given_at=now))

    def load(self, tenant_id: str, person_id: str) -> Voiceprint | None:
        with self._db.session() as s:
            row = s.scalar(select(VoiceprintRow).where(VoiceprintRow.tenant_id == tenant_id,
                                                       VoiceprintRow.person_id == person_id))
            if row is None:
                return None
            arrays = unpack_arrays(self._sealer.open(row.ciphertext,
                                                     _aad(tenant_id, person_id, "voiceprint")))
            phrase = str(arrays["passphrase"])
            return Voiceprint(embedding=arrays["embedding"].astype(np.float32),
                              backend=row.backend, n_utterances=row.n_utterances,
                              speech_s=row.speech_s, passphrase=phrase or None)

    def voiceprints(self, tenant_id: str, *, after: str = "", limit: int = 100,
                    query: str | None = None) -> list[VoiceprintInfo]:
        """One tenant's enrolled people, by person id (page with ``after``, the last id seen)."""
        with self._db.session() as s:
            q = select(VoiceprintRow).where(VoiceprintRow.tenant_id == tenant_id,
                                            VoiceprintRow.person_id > after)
            if query:
                q = q.where(VoiceprintRow.person_id.contains(query, autoescape=True))
            rows = list(s.scalars(q.order_by(VoiceprintRow.person_id).limit(limit)))
            consents = dict(s.execute(
                select(ConsentRow.person_id, ConsentRow.given_at).where(
                    ConsentRow.tenant_id == tenant_id, ConsentRow.withdrawn_at.is_(None),
                    ConsentRow.person_id.in_([r.person_id for r in rows]))
                .order_by(ConsentRow.id)).all())
            return [VoiceprintInfo(r.person_id, r.backend, r.n_utterances, r.speech_s,
                                   r.created_at, r.updated_at, consents.get(r.person_id))
                    for r in rows]

    def add_sample(self, tenant_id: str, person_id: str, kind: str, sample: Sample,
                   now: float) -> None:
        blob = self._sealer.seal(
            pack_arrays(embedding=sample.embedding.astype(np.float32),
                        fingerprint=np.packbits(sample.fingerprint, axis=-1),
                        bits=np.array(sample.fingerprint.shape, dtype=np.int64)),
            _aad(tenant_id, person_id, "sample"))
        with self._db.session() as s:
            s.add(SampleRow(tenant_id=tenant_id, person_id=person_id, kind=kind,
                            ciphertext=blob, created_at=now))
            s.flush()
            ids = s.scalars(select(SampleRow.id).where(SampleRow.tenant_id == tenant_id,
                                                       SampleRow.person_id == person_id)
                            .order_by(SampleRow.id.desc()).offset(MAX_SAMPLES_PER_PERSON)).all()
            if ids:
                s.execute(delete(SampleRow).where(SampleRow.id.in_(ids)))

    def samples(self, tenant_id: str, person_id: str) -> list[Sample]:
        with self._db.session() as s:
            blobs = s.scalars(select(SampleRow.ciphertext).where(
                SampleRow.tenant_id == tenant_id, SampleRow.person_id == person_id)).all()
        out = []
        for blob in blobs:
            a = unpack_arrays(self._sealer.open(blob, _aad(tenant_id, person_id, "sample")))
            rows, cols = (int(v) for v in a["bits"])
            packed = a["fingerprint"].astype(np.uint8)
            bits = (np.unpackbits(packed, axis=-1)[:, :cols] if rows
                    else np.zeros((0, cols), dtype=np.uint8))
            out.append(Sample(embedding=a["embedding"].astype(np.float32), fingerprint=bits))
        return out

    def delete(self, tenant_id: str, person_id: str, now: float) -> bool:
        """Erase the voiceprint and samples; mark consent withdrawn. True if one existed."""
        with self._db.session() as s:
            n = s.execute(delete(VoiceprintRow).where(VoiceprintRow.tenant_id == tenant_id,
                                                      VoiceprintRow.person_id == person_id))
            s.execute(delete(SampleRow).where(SampleRow.tenant_id == tenant_id,
                                              SampleRow.person_id == person_id))
            for c in s.scalars(select(ConsentRow).where(ConsentRow.tenant_id == tenant_id,
                                                        ConsentRow.person_id == person_id,
                                                        ConsentRow.withdrawn_at.is_(None))):
                c.withdrawn_at = now
            return bool(n.rowcount)  # type: ignore[attr-defined]

    def audit(self, tenant_id: str, person_id: str, action: str, *, actor: str, outcome: str,
              now: float) -> None:
        with self._db.session() as s:
            s.add(AuditRow(tenant_id=tenant_id, person_id=person_id, action=action, actor=actor,
                           outcome=outcome, at=now))

    def audit_log(self, tenant_id: str, person_id: str | None = None) -> list[AuditEntry]:
        with self._db.session() as s:
            q = select(AuditRow).where(AuditRow.tenant_id == tenant_id)
            if person_id is not None:
                q = q.where(AuditRow.person_id == person_id)
            return [AuditEntry(r.person_id, r.action, r.actor, r.outcome, r.at)
                    for r in s.scalars(q.order_by(AuditRow.id))]

    def consents(self, tenant_id: str, person_id: str) -> list[ConsentRow]:
        with self._db.session() as s:
            return list(s.scalars(select(ConsentRow).where(
                ConsentRow.tenant_id == tenant_id, ConsentRow.person_id == person_id)
                .order_by(ConsentRow.id)))
