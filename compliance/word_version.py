"""When word lists change, every filter on every node recompiles, without asking SQL per scan.

A :class:`WordRegistry` recompiles when its store's version moves. Reading that version from the
database on every scan (every prompt, every SMS) costs a query each time; instead
:class:`VersionedWordStore` keeps the version it last read and reads again only when

- a write in this process says so (:func:`words_changed`, which every :class:`SqlWordStore`
  write calls through its ``on_change`` hook), or
- another node says so over Redis (``compliance.redis_url``): writers ``PUBLISH`` on
  :data:`WORDS_CHANNEL` and each node's :class:`WordChangeSubscriber` calls
  :func:`words_changed`, or
- ``max_age_s`` has passed (a safety net for a lost message, or the only way without Redis).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from compliance.wordlist import WordStore
from compliance.words import Term
from core.clock import Clock

log = logging.getLogger("ivr.compliance.words")

WORDS_CHANNEL = "ivr:words:changed"
POLL_WITHOUT_REDIS_S = 2.0  # how stale a node's filters may be when nothing tells it
POLL_WITH_REDIS_S = 60.0  # with pub/sub the poll only covers a lost message

_caches: weakref.WeakSet[VersionedWordStore] = weakref.WeakSet()
_caches_lock = threading.Lock()


class VersionedWordStore:
    """A :class:`WordStore` whose ``version()`` is cached (see the module docstring)."""

    def __init__(self, store: WordStore, clock: Clock, max_age_s: float) -> None:
        self.store = store
        self.clock = clock
        self.max_age_s = max_age_s
        self._version = 0
        self._read_at: float | None = None
        self.reads = 0  # database reads of the version (what the cache saves is visible)
        with _caches_lock:
            _caches.add(self)

    def invalidate(self) -> None:
        self._read_at = None

    def version(self) -> int:
        now = self.clock.now()
        if self._read_at is None or now - self._read_at >= self.max_age_s:
            self._read_at = now  # before reading: a change during the read re-invalidates
            self._version = self.store.version()
            self.reads += 1
        return self._version

    def all_terms(self) -> list[Term]:
        return self.store.all_terms()

    def add_terms(self, terms: Iterable[Term]) -> int:
        return self.store.add_terms(terms)

    def remove_term(self, text: str, tenant: str | None) -> bool:
        return self.store.remove_term(text, tenant)


def words_changed() -> None:
    """Every cached version in this process is stale: the next scan reads it again."""
    with _caches_lock:
        caches = list(_caches)
    for cache in caches:
        cache.invalidate()


def change_notifier(redis_url: str | None) -> Callable[[], None]:
    """What a word store calls after it committed a change: this process's caches go stale at
    once, and with Redis every other node's too (a failed publish is logged; their poll
    catches up within ``POLL_WITH_REDIS_S``)."""
    if redis_url is None:
        return words_changed
    from redis import Redis  # noqa: PLC0415 - only with compliance.redis_url

    client = Redis.from_url(redis_url, socket_timeout=2.0)

    def notify() -> None:
        words_changed()
        try:
            client.publish(WORDS_CHANNEL, b"1")
        except Exception as e:
            log.warning("words changed but the other nodes could not be told: %s", e)

    return notify


class WordChangeSubscriber:
    """Listens on :data:`WORDS_CHANNEL` and makes this process's caches stale on each message;
    reconnects with a pause when Redis goes away (the poll covers the gap)."""

    def __init__(self, redis: Any, clock: Clock, *, retry_s: float = 2.0) -> None:
        self.redis = redis
        self.clock = clock
        self.retry_s = retry_s
        self.messages = 0

    async def run(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(WORDS_CHANNEL)
                words_changed()  # anything missed while we were not listening
                try:
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.messages += 1
                            words_changed()
                finally:
                    await pubsub.aclose()
            except Exception as e:
                log.warning("word-change subscription lost (%s); retrying in %.0f s", e,
                            self.retry_s)
                await self.clock.sleep(self.retry_s)
