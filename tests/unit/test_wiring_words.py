"""The engine compiles its word filter at start (app.wiring.precompile_words), so the first
call waits for no compile and what a compile loads for good is frozen with the rest of the
start-up heap."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from app.wiring import RegistryWordChecker, precompile_words
from compliance.wordlist import InMemoryWordStore, WordRegistry
from compliance.words import Term


def test_the_first_scan_after_start_compiles_nothing() -> None:
    registry = WordRegistry(InMemoryWordStore([Term("赌博"), Term("scam")]))
    words = RegistryWordChecker(registry, "acme")
    compiled = precompile_words(words)
    assert compiled is not None and compiled.term_count == 2
    assert registry.filter_for("acme") is compiled
    assert [h.term for h in words.scan("来玩du博吧").hits] == ["赌博"]


class _BrokenStore(InMemoryWordStore):
    def all_terms(self) -> list[Term]:
        raise RuntimeError("database is locked")


def test_a_list_that_does_not_compile_does_not_stop_the_start(
        caplog: pytest.LogCaptureFixture) -> None:
    words = RegistryWordChecker(WordRegistry(_BrokenStore()), None)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, "ivr.wiring"):
        assert precompile_words(words) is None
    assert "did not compile at start" in caplog.text


PROBE = textwrap.dedent("""
    import gc, sys
    from app.wiring import RegistryWordChecker, precompile_words
    from compliance.wordlist import InMemoryWordStore, WordRegistry
    from compliance.words import Term

    words = RegistryWordChecker(WordRegistry(InMemoryWordStore([Term("赌博")])), None)
    if sys.argv[1] == "precompile":
        precompile_words(words)
    gc.collect()
    gc.freeze()  # what the engine does once it has started
    before = len(gc.get_objects())
    words.scan("来玩du博吧")  # the first call's scan
    gc.collect()
    print(len(gc.get_objects()) - before)
""")


@pytest.mark.parametrize("mode", ["precompile", "lazy"])
def test_what_the_compile_loads_is_frozen_with_the_start_up_heap(mode: str) -> None:
    """In a fresh interpreter (this one has pypinyin loaded already): with the compile at
    start, the first scan leaves the collector nothing new to walk; compiled lazily, it
    leaves pypinyin's dictionaries (~200k lists) tracked for the life of the process."""
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         timeout=120, check=True)
    added = int(out.stdout.split()[-1])
    if mode == "precompile":
        assert added < 1_000, added
    else:
        assert added > 100_000, added  # the probe can tell the difference
