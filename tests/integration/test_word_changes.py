"""Word-list edits reach every node's filters without a database query per scan: a cached
version, read again after a local write, a Redis message from another process, or a poll."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.compliance_setup import word_registry
from app.config import Settings
from compliance.sql_store import SqlWordStore
from compliance.word_version import VersionedWordStore, WordChangeSubscriber
from compliance.words import Term
from core.clock import FakeClock
from core.tasks import TaskScope
from storage import open_database
from tests.netutil import wait_until

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, redis_url: str | None) -> Settings:
    return Settings.model_validate({
        "storage": {"url": f"sqlite:///{tmp_path}/ivr.sqlite"},
        "compliance": {"redis_url": redis_url}})


def test_scans_do_not_query_the_version_until_something_changes(tmp_path: Path) -> None:
    clock = FakeClock()
    reg = word_registry(settings(tmp_path, None), clock)
    store = reg._store
    assert isinstance(store, VersionedWordStore)
    reg.filter_for("acme")  # compiled once
    reads = store.reads
    for _ in range(100):
        reg.filter_for("acme").scan("没有敏感词")
    assert store.reads == reads  # a hundred scans, no version query
    store.store.add_terms([Term("诈骗", "fraud")])  # a write in this process says so at once
    assert reg.filter_for("acme").scan("这是诈骗").blocked
    assert store.reads == reads + 1


async def test_without_any_message_the_poll_catches_up(tmp_path: Path) -> None:
    clock = FakeClock()
    reg = word_registry(settings(tmp_path, None), clock)
    store = reg._store
    assert isinstance(store, VersionedWordStore)
    reg.filter_for(None)
    # another process's write: the rows and version move, and nobody tells this process
    other = SqlWordStore(open_database(f"sqlite:///{tmp_path}/ivr.sqlite"),
                         on_change=lambda: None)
    other.add_terms([Term("赌博", "custom")])
    assert not reg.filter_for(None).scan("快来赌博").blocked  # stale, by design, until ...
    await clock.advance(store.max_age_s)  # ... the poll is due
    assert reg.filter_for(None).scan("快来赌博").blocked


@pytest.mark.redis
async def test_another_process_edit_arrives_over_redis(tmp_path: Path, redis_url: str) -> None:
    """`ivr words import` in another process: this process's filter has the new term once the
    message arrives, long before its 60 s poll."""
    clock = FakeClock()  # never advanced: only the message can explain a recompile
    reg = word_registry(settings(tmp_path, redis_url), clock)
    assert not reg.filter_for("acme").scan("快来赌博").blocked
    sub = WordChangeSubscriber(Redis.from_url(redis_url), clock)
    scope = TaskScope("test")
    scope.spawn(sub.run(), "word-changes")
    try:
        await wait_until(lambda: _subscribed(redis_url), 10, "subscribed", poll_s=0.05)
        words = tmp_path / "words.txt"
        words.write_text("赌博\n", encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
               "IVR_COMPLIANCE__REDIS_URL": redis_url}
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "app.cli.main", "words", "import",
                             str(words), "--format", "txt"],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        await wait_until(lambda: sub.messages >= 1, 10, "the change message")
        assert reg.filter_for("acme").scan("快来赌博").blocked
    finally:
        await scope.close(grace_s=0.5)
        await sub.redis.aclose()


async def _subscribed(redis_url: str) -> bool:
    r = Redis.from_url(redis_url)
    try:
        counts = await r.pubsub_numsub("ivr:words:changed")
        return bool(counts and counts[0][1])
    finally:
        await r.aclose()
