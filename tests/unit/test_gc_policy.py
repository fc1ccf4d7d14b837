"""`ivr run` spaces full garbage collections (``runtime.gc_full_every``): a full collection
stops every call's audio, and after the start-up freeze it finds next to nothing to free."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.config import ConfigError, load_settings
from app.loop import space_full_collections


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_full_collections_are_spaced_and_the_young_ones_kept(thresholds: None) -> None:
    young = gc.get_threshold()[:2]
    before = space_full_collections(load_settings(environ={}).runtime.gc_full_every)
    assert gc.get_threshold() == (*young, 100)
    assert before[:2] == young


def test_the_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="gc_full_every"):
        load_settings(environ={"IVR_RUNTIME__GC_FULL_EVERY": "0"})
