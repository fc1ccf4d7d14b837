"""speaker_id.store: encryption at rest, row binding, consent, deletion, audit, key handling."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from speaker_id.store import (
    MAX_SAMPLES_PER_PERSON,
    ConsentRow,
    DecryptionError,
    EncryptionKeyError,
    Sample,
    SampleRow,
    Voiceprint,
    VoiceprintRow,
    VoiceprintStore,
    generate_key,
    parse_key,
)
from storage.db import open_database

KEY = parse_key(generate_key())


def _vector(seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=256).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "spk.sqlite"


@pytest.fixture
def store(db_path: Path) -> VoiceprintStore:
    return VoiceprintStore(open_database(f"sqlite:///{db_path}"), KEY)


def _save(store: VoiceprintStore, person: str = "p1", tenant: str = "t1", seed: int = 0) -> None:
    store.save(tenant, person, Voiceprint(_vector(seed), "resemblyzer", 3, 6.5, "open sesame"),
               consent_method="test", consent_text="agreed", actor="tester", now=100.0)


def test_round_trip(store: VoiceprintStore) -> None:
    _save(store)
    vp = store.load("t1", "p1")
    assert vp is not None
    assert np.array_equal(vp.embedding, _vector(0))
    assert (vp.backend, vp.n_utterances, vp.passphrase) == ("resemblyzer", 3, "open sesame")


def test_stored_bytes_do_not_contain_the_vector(store: VoiceprintStore, db_path: Path) -> None:
    _save(store)
    vec = _vector(0)
    store._db.engine.dispose()
    for path in db_path.parent.glob("spk.sqlite*"):  # the database and its WAL
        raw = path.read_bytes()
        assert vec.tobytes() not in raw
        assert vec[:4].tobytes() not in raw  # not even 16 bytes of it
        assert b"open sesame" not in raw  # nor the passphrase
    with store._db.session() as s:
        blob = s.scalar(select(VoiceprintRow.ciphertext))
    assert blob is not None
    assert vec[:2].tobytes() not in blob


def test_wrong_key_cannot_open(store: VoiceprintStore, db_path: Path) -> None:
    _save(store)
    other = VoiceprintStore(open_database(f"sqlite:///{db_path}"), parse_key(generate_key()))
    with pytest.raises(DecryptionError):
        other.load("t1", "p1")


def test_ciphertext_moved_to_another_person_fails(store: VoiceprintStore) -> None:
    _save(store, "victim")
    _save(store, "attacker", seed=1)
    with store._db.session() as s:
        rows = {r.person_id: r for r in s.scalars(select(VoiceprintRow))}
        rows["attacker"].ciphertext = rows["victim"].ciphertext
    with pytest.raises(DecryptionError):
        store.load("t1", "attacker")


def test_tenants_are_separate(store: VoiceprintStore) -> None:
    _save(store, tenant="t1")
    assert store.load("t2", "p1") is None


def test_reenrol_replaces_and_records_consent_again(store: VoiceprintStore) -> None:
    _save(store)
    _save(store, seed=5)
    vp = store.load("t1", "p1")
    assert vp is not None and np.array_equal(vp.embedding, _vector(5))
    with store._db.session() as s:
        assert len(s.scalars(select(VoiceprintRow)).all()) == 1
    assert len(store.consents("t1", "p1")) == 2


def test_delete_erases_and_withdraws_consent(store: VoiceprintStore) -> None:
    _save(store)
    store.add_sample("t1", "p1", "enroll", Sample(_vector(), np.ones((10, 16), np.uint8)), 1.0)
    assert store.delete("t1", "p1", now=200.0) is True
    assert store.load("t1", "p1") is None
    assert store.samples("t1", "p1") == []
    consents = store.consents("t1", "p1")
    assert consents and all(c.withdrawn_at == 200.0 for c in consents)
    assert store.delete("t1", "p1", now=201.0) is False


def test_samples_round_trip_and_are_pruned(store: VoiceprintStore) -> None:
    fp = (np.arange(37 * 16).reshape(37, 16) % 3 == 0).astype(np.uint8)
    for i in range(MAX_SAMPLES_PER_PERSON + 5):
        store.add_sample("t1", "p1", "verify", Sample(_vector(i), fp), float(i))
    samples = store.samples("t1", "p1")
    assert len(samples) == MAX_SAMPLES_PER_PERSON
    assert np.array_equal(samples[0].fingerprint, fp)
    with store._db.session() as s:
        assert len(s.scalars(select(SampleRow)).all()) == MAX_SAMPLES_PER_PERSON


def test_audit_log(store: VoiceprintStore) -> None:
    store.audit("t1", "p1", "verify", actor="ivr", outcome="match", now=5.0)
    store.audit("t2", "p1", "verify", actor="ivr", outcome="no_match", now=6.0)
    log = store.audit_log("t1")
    assert [(e.person_id, e.action, e.outcome) for e in log] == [("p1", "verify", "match")]


def test_consent_row_has_tenant(store: VoiceprintStore) -> None:
    _save(store)
    with store._db.session() as s:
        c = s.scalar(select(ConsentRow))
    assert c is not None and (c.tenant_id, c.text, c.method) == ("t1", "agreed", "test")


def test_key_parsing() -> None:
    assert len(parse_key(generate_key())) == 32
    with pytest.raises(EncryptionKeyError, match="not set"):
        parse_key(None)
    with pytest.raises(EncryptionKeyError, match="32 bytes"):
        parse_key(base64.urlsafe_b64encode(b"short").decode())
    with pytest.raises(EncryptionKeyError, match="base64"):
        parse_key("!!!not base64!!!")
