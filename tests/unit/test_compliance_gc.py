"""A compiled word filter holds next to nothing that the cyclic garbage collector tracks.

Filters are compiled on first use and after every word change, after the engine's start-up
``gc.freeze()``, so every object a filter holds that the collector tracks is walked by every
full collection of the process, and a full collection stops the event loop: with a 100k-term
filter holding ~1.0M such objects (a key object and a list per automaton key, the terms, their
pinyin spellings and units), it stopped every call's audio for ~350 ms (docs/benchmarks.md,
"Word filter and the collector, stop 29"; ``bench_compliance gc`` measures the pause). The
bound here is on the count, which does not move with the machine's load.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable

import pytest

from compliance import native
from compliance.pinyin import PinyinMode
from compliance.words import Action, Term, WordFilter
from tests.unit.test_compliance_scan_paths import TERMS

N_TERMS = 3_000
# Objects a filter may hold, whatever its size: the filter, its automaton groups, a few sets
# and dicts. Filters now hold ~16; before this bound they held ~8 per term (24.5k here).
MAX_TRACKED = 200
UNTRACK_COLLECTIONS = 6  # the tables nest tuples five deep

SAMPLE = "赌 博, dǔbó, SB, 沙比, scam"
CJK = [chr(c) for c in range(0x4E00 + 3500, 0x4E00 + 4500)]
LATIN = "abcdefghijklmnopqrstuvwxyz"


def _terms() -> list[Term]:
    """Every kind of term: Latin words, Chinese terms with pinyin spellings (polyphones too),
    homophone terms, initials, allow-list entries, every action."""
    rng = random.Random(29)
    out = list(TERMS)
    seen = {t.text for t in out}
    actions = list(Action)
    while len(out) < N_TERMS:
        if rng.random() < 0.7:
            text = "".join(rng.choice(CJK) for _ in range(rng.randint(2, 4)))
            pinyin = PinyinMode.HOMOPHONE if rng.random() < 0.1 else None
            term = Term(text, "fraud", rng.randint(1, 5), rng.choice(actions), pinyin=pinyin,
                        initials=rng.random() < 0.05)
        else:
            text = "".join(rng.choice(LATIN) for _ in range(rng.randint(5, 9)))
            term = Term(text, "abuse", allow=rng.random() < 0.02)
        if text not in seen:
            seen.add(text)
            out.append(term)
    return out


def _tracked() -> int:
    """Tracked objects once the collector has settled: without the extension it untracks the
    filter's nested tuples over its next collections, a level or so each (with it, the
    compile untracks them at once: test_compliance_native.py)."""
    for _ in range(UNTRACK_COLLECTIONS):
        gc.collect()
    return len(gc.get_objects())


def _held_by_a_filter(build: Callable[[list[Term]], WordFilter]) -> int:
    """Tracked objects that go away with the filter, once the caller's terms are gone too:
    what a filter adds to every full collection. A first build and scan load what every
    filter needs once per process (pypinyin's dictionaries, jieba's words, caches): not the
    filter's own."""
    build(_terms()).find(SAMPLE)
    terms = _terms()
    wf = build(terms)
    del terms
    wf.find(SAMPLE)
    with_filter = _tracked()
    del wf
    return with_filter - _tracked()


@pytest.mark.parametrize("native_loops", [
    pytest.param(True, marks=pytest.mark.skipif(not native.available(),
                                                reason="compliance._wordscan not built")),
    False])
def test_a_compiled_filter_holds_few_tracked_objects(native_loops: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths; the Python one as without the extension built at all."""
    if not native_loops:
        monkeypatch.setattr(native, "_ext", None)
    held = _held_by_a_filter(lambda ts: WordFilter(ts, native_loops=native_loops))
    assert held < MAX_TRACKED, f"a {N_TERMS}-term filter holds {held} tracked objects"
    hits = {h.term for h in WordFilter(_terms(), native_loops=native_loops).find(SAMPLE)}
    assert {"赌博", "傻逼", "scam"} <= hits  # the filters measured are working ones
