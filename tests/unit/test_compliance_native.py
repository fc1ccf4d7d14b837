"""The native inner loops (compliance/_wordscan.c) find exactly what the Python paths find.

The same filter is built both ways and run over random evasive text (look-alikes, ligatures,
separators, toned and mixed pinyin, English words, emoji); hits, spans and masking must be
equal. The building blocks are checked against what they stand in for: the folding against
:func:`compliance.normalize.fold`, the automaton against ahocorasick-rs (same matches, same
order). Bad input to the extension raises a clear error, never crashes.
"""

from __future__ import annotations

import gc
import random
from dataclasses import dataclass
from typing import Any

import ahocorasick_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance import native
from compliance.normalize import fold
from compliance.words import ACTIONS, Action, Hit, StreamingScanner, Term, WordFilter
from tests.unit.test_compliance_scan_paths import PIECES, TERMS

pytestmark = pytest.mark.skipif(not native.available(),
                                reason="compliance._wordscan not built (scripts/bootstrap.sh)")

mixed_text = st.lists(st.sampled_from(PIECES), min_size=1, max_size=40).map("".join)




@pytest.fixture(scope="module")
def both() -> tuple[WordFilter, WordFilter]:
    return WordFilter(TERMS, native_loops=True), WordFilter(TERMS, native_loops=False)


def _hits(wf: WordFilter, text: str) -> tuple[list[tuple[int, int, str, bool, str]], str]:
    r = wf.scan(text)
    return [(h.start, h.end, h.term, h.via_pinyin, h.matched) for h in r.hits], r.masked_text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mixed_text)
def test_native_loops_find_what_the_python_paths_find(
        both: tuple[WordFilter, WordFilter], text: str) -> None:
    fast, slow = both
    assert fast.native and not slow.native
    assert _hits(fast, text) == _hits(slow, text)


def test_long_mixed_text_both_ways(both: tuple[WordFilter, WordFilter]) -> None:
    """Long text (the numpy paths on the Python side), with every kind of hit in it."""
    rng = random.Random(5)
    text = "".join(rng.choice(PIECES) for _ in range(3000))
    fast, slow = both
    got = _hits(fast, text)
    assert got == _hits(slow, text)
    assert {h[3] for h in got[0]} == {True, False} and len(got[0]) > 50


def test_streaming_both_ways(both: tuple[WordFilter, WordFilter]) -> None:
    rng = random.Random(9)
    pieces = [rng.choice(PIECES) for _ in range(400)]
    fast, slow = (StreamingScanner(wf) for wf in both)
    for p in pieces:
        fast.feed(p)
        slow.feed(p)
    assert [(h.start, h.end, h.term) for h in fast.hits] == [
        (h.start, h.end, h.term) for h in slow.hits]
    assert fast.hits


@settings(max_examples=200, deadline=None)
@given(text=mixed_text)
def test_native_folding_is_the_array_folding(text: str) -> None:
    f, n = fold(text), native.fold(text)
    assert n.text == f.text
    assert (list(n.orig), list(n.run_start), list(n.run_len)) == (
        f.orig.tolist(), f.run_start.tolist(), f.run_len.tolist())
    p, s = fold(text, pinyin=True), n.sounds()
    assert (s.text, list(s.run_start), list(s.run_len)) == (
        p.text, p.run_start.tolist(), p.run_len.tolist())
    if f.text:
        assert n.span(0, len(f.text) - 1) == f.span(0, len(f.text) - 1)


def test_native_folding_grows_past_its_first_guess() -> None:
    """fold() sizes its arrays for one code a character; ligatures and units fold to several
    (ﬁ -> fi, ㎏ -> kg), so a text of many of them makes it grow them as it goes."""
    text = "ﬁ" * 300 + "赌 ㎏" * 100 + "ﬀx" * 50
    f, n = fold(text), native.fold(text)
    assert len(f.orig) > len(text) + 16  # past the first guess
    assert n.text == f.text
    assert (list(n.orig), list(n.run_start), list(n.run_len)) == (
        f.orig.tolist(), f.run_start.tolist(), f.run_len.tolist())


# Spelled terms whose two groups (homophone and not) have the same reach (every term two
# characters): the spelled pass's one window test for every group at once.
SAME_REACH = [
    Term("赌博", "fraud"), Term("妈的", "abuse", pinyin="spelled"),
    Term("傻逼", "abuse", pinyin="homophone", initials=True),
    Term("贱人", "abuse", pinyin="homophone"), Term("哥哥", "custom", pinyin="spelled"),
    Term("scam", "fraud"),
]


@pytest.fixture(scope="module")
def same_reach() -> tuple[WordFilter, WordFilter]:
    return (WordFilter(SAME_REACH, native_loops=True),
            WordFilter(SAME_REACH, native_loops=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mixed_text)
def test_groups_of_one_reach_find_what_the_python_paths_find(
        same_reach: tuple[WordFilter, WordFilter], text: str) -> None:
    fast, slow = same_reach
    assert len({reach for _, reach, _ in fast._spelled_groups}) == 1
    assert len(fast._spelled_groups) == 2
    assert _hits(fast, text) == _hits(slow, text)


def test_groups_of_one_reach_long_text(same_reach: tuple[WordFilter, WordFilter]) -> None:
    rng = random.Random(11)
    text = "".join(rng.choice(PIECES) for _ in range(4000))
    fast, slow = same_reach
    got = _hits(fast, text)
    assert got == _hits(slow, text)
    assert sum(h[3] for h in got[0]) > 20  # spelled and homophone hits among them


def _keys(shortest: int) -> st.SearchStrategy[list[str]]:
    """Automaton keys over characters that fold to themselves (runs collapsed)."""
    return st.lists(st.text("abc赌博\U00020000", min_size=shortest, max_size=5), min_size=1,
                    max_size=30, unique=True)


def _ahocorasick_rs(keys: list[str], f: Any) -> list[tuple[int, int, int]]:
    """ahocorasick-rs's overlapping matches over a native folding's canonical text."""
    got: list[tuple[int, int, int]] = ahocorasick_rs.AhoCorasick(keys).find_matches_as_indexes(
        f.text, overlapping=True)
    return got


@settings(max_examples=200, deadline=None)
@given(keys=_keys(1), text=st.text("abc赌博\U00020000x", max_size=60))
def test_automaton_matches_are_ahocorasick_rs_matches_in_its_order(
        keys: list[str], text: str) -> None:
    f = native.fold(text)
    assert native.automaton(keys).find(f) == _ahocorasick_rs(keys, f)


@settings(max_examples=200, deadline=None)
@given(keys=_keys(2), text=st.text("abc赌博\U00020000x ", max_size=60))
def test_unbounded_walk_with_the_pair_filter_finds_every_match(
        keys: list[str], text: str) -> None:
    """The homophone pass's tries: walked from every start whose two symbols begin a key, no
    word boundaries asked; by end, then start, they are Aho-Corasick's matches in its order."""
    f = native.fold(text)
    got = native.automaton(keys, links=False, prefix2=True, bounded=False).walk(f, text)
    assert sorted(got, key=lambda m: (m[2], m[1])) == _ahocorasick_rs(keys, f)


@pytest.mark.parametrize("seed", range(4))
def test_a_large_walked_trie_finds_every_match(seed: int) -> None:
    """Tries walked down (links=False) keep DFA rows for their shallowest nodes only and step
    through compact child records below (a scan of up to eight children, a binary search over
    more): a trie far past the rows, with nodes of both kinds and symbols with no row (赌, an
    astral one), walked from every start, finds Aho-Corasick's matches."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklm7赌博\U00020000"
    keys = list({"".join(rng.choice(alphabet[: rng.choice((4, 16))])
                         for _ in range(rng.randint(1, 8))) for _ in range(4000)})
    keys = [k for k in keys if native.fold(k).text == k]  # canonical: no runs to collapse
    text = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                    for _ in range(3000))
    f = native.fold(text)
    trie = native.automaton(keys, links=False, bounded=False)
    assert trie.nodes > 4 * 1024  # far past the rows (HOT_ROWS in _wordscan.h)
    got = trie.walk(f, text)
    assert sorted(got, key=lambda m: (m[2], m[1])) == _ahocorasick_rs(keys, f)
    assert len(got) > 10_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(st.text("abcs1", min_size=1, max_size=4), min_size=1, max_size=20,
                     unique=True),
       text=st.lists(st.sampled_from([*PIECES, "a", "b", "c", "s", "1", "\ufb01", "\u0455",
                                      "\uff41", "-", " ", "\u200b", "x", "\u00e9"]),
                     max_size=30).map("".join))
def test_bounded_walk_jumps_only_over_starts_that_cannot_match(keys: list[str],
                                                               text: str) -> None:
    """A trie whose keys all begin with a-z or 0-9 is walked from the folding's word starts
    only; one with a key that begins otherwise (赌) from every position. Both find the same
    matches of the Latin keys, in the same order, so the jump skips no start that matches."""
    f = native.fold(text)
    jumped = native.automaton(keys, links=False).walk(f, text)
    everywhere = native.automaton([*keys, "赌x"], links=False).walk(f, text)
    assert jumped == [m for m in everywhere if m[0] < len(keys)]


def test_prefix_filter_keeps_every_walk_that_can_match() -> None:
    """A walked trie with the four-letter filter finds what one without it finds."""
    rng = random.Random(3)
    keys = list({"".join(rng.choice("abcd") for _ in range(rng.randint(4, 7)))
                 for _ in range(300)})
    text = " ".join("".join(rng.choice("abcd") for _ in range(rng.randint(1, 9)))
                    for _ in range(2000))
    f = native.fold(text)
    filtered = native.automaton(keys, links=False, prefix4=True).walk(f, text)
    plain = native.automaton(keys, links=False).walk(f, text)
    assert filtered == plain and len(plain) > 100


def test_a_fold_table_with_values_too_large_is_refused() -> None:
    """configure() keeps two flags in the fold table's top bits: a value that reaches them is
    refused (and nothing scans with the half-made tables), then the real tables work again."""
    import numpy as np

    ext = native.module()
    bad = np.zeros(0x10000, dtype=np.uint32)
    bad[0x41] = 1 << 30
    bytes0 = np.zeros(0x10000, dtype=np.uint8).tobytes()
    zeros4 = np.zeros(0x10000, dtype=np.uint32).tobytes()
    try:
        with pytest.raises(ValueError, match="fold: value"):
            ext.configure(bad.tobytes(), zeros4, b"", zeros4, bytes0, bytes0, bytes0,
                          np.zeros(1, dtype=np.uint32).tobytes(), b"", lambda cp: cp)
        with pytest.raises(RuntimeError, match="configure"):
            ext.fold("abc")
    finally:
        native.module.cache_clear()
    assert native.fold("ＡＢ c").text == "abc"
    assert WordFilter([Term("scam")], native_loops=True).find("ѕсаm")


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="keys"):
        native.automaton(["ab", ""])
    with pytest.raises(ValueError, match="prefix4"):
        native.automaton(["abc"], links=False, prefix4=True)
    with pytest.raises(ValueError, match="prefix2"):
        native.automaton(["ab", "c"], links=False, prefix2=True)
    with pytest.raises(TypeError, match="text"):
        native.fold(b"bytes")  # type: ignore[arg-type]
    f = native.fold("du博")
    auto = native.automaton(["dubo"], links=False)
    with pytest.raises(ValueError, match="relevant"):
        native.spelled(f, "du博", (((auto,), 2, b"\0" * 10),))
    with pytest.raises(ValueError, match="original"):
        auto.walk(native.fold("a much longer text"), "short")
    with pytest.raises(TypeError, match="Automaton"):
        native.spelled(f, "du博", ((("not an automaton",), 2, b"\0" * 0x10000),))
    with pytest.raises(TypeError, match="groups"):
        native.spelled(f, "du博", ("not a group",))
    with pytest.raises(TypeError, match="automaton, values, walked"):
        _native_hits(f, "du博", ((auto, [[]]),))
    with pytest.raises(ValueError, match="one value per key"):
        _native_hits(f, "du博", ((auto, [], True),))
    with pytest.raises(TypeError, match="hit_type"):
        _native_hits(f, "du博", (), "not a type")  # type: ignore[arg-type]
    assert WordFilter([Term("赌博")], native_loops=True).find("du博")


def _native_hits(f: Any, text: str, sources: Any, hit_type: type = Hit) -> Any:
    return native.hits(f, text, sources, 0, hit_type=hit_type, actions=ACTIONS)


def _plain_sources(terms: list[Term]) -> tuple[Any, str]:
    wf = WordFilter(terms, native_loops=True)
    return wf._plain.sources, "SCAM, s c a m and 赌 博 or 赌博"


def test_native_hits_are_the_hits_the_dataclass_makes() -> None:
    """native.hits() fills a Hit's slots itself: each field must land in its own slot."""
    sources, text = _plain_sources([Term("scam", "fraud", 4, Action.BLOCK),
                                    Term("赌博", "custom", 2, Action.FLAG)])
    got, allows = _native_hits(native.fold(text), text, sources)
    assert allows == []
    assert [type(h) for h in got] == [Hit] * 4
    assert got == [Hit(0, 4, "SCAM", "scam", "fraud", 4, Action.BLOCK, False),
                   Hit(6, 13, "s c a m", "scam", "fraud", 4, Action.BLOCK, False),
                   Hit(18, 21, "赌 博", "赌博", "custom", 2, Action.FLAG, False),
                   Hit(25, 27, "赌博", "赌博", "custom", 2, Action.FLAG, False)]
    assert got[0].matched == "SCAM" and got[0].via_pinyin is False  # attributes, not just ==
    got[0].start = 1  # a real Hit: its slots behave as ever
    assert got[0].start == 1


@dataclass(slots=True)
class _CheckedHit:
    """A Hit look-alike whose __post_init__ must run: native.hits() calls such a type."""

    start: int
    end: int
    matched: str
    term: str
    category: str
    severity: int
    action: Action
    via_pinyin: bool = False
    seen: bool = False

    def __post_init__(self) -> None:
        self.seen = True


@dataclass(slots=True)
class _OtherHit:
    """Eight fields like Hit's and no __post_init__, but its own __init__ order: called too."""

    end: int
    start: int
    matched: str
    term: str
    category: str
    severity: int
    action: Action
    via_pinyin: bool = False


def test_native_hits_call_a_type_that_is_not_hits_plain_shape() -> None:
    sources, text = _plain_sources([Term("scam")])
    f = native.fold(text)
    checked = _native_hits(f, text, sources, _CheckedHit)[0]
    assert checked and all(h.seen for h in checked)
    other = _native_hits(f, text, sources, _OtherHit)[0]
    assert (other[0].end, other[0].start) == (0, 4)  # positional, as a call passes them
    assert _native_hits(f, text, sources)[0][0].start == 0  # and back to Hit's own


def _pieces_one_by_one(text: str) -> list[tuple[str, str]]:
    """What ``pinyin._pieces`` was before it folded with ``str.translate``: each character
    folded on its own (the reference it must agree with)."""
    from compliance.normalize import folded_char
    from compliance.pinyin import TONE_DIGITS, _syllable

    out: list[tuple[str, str]] = []
    folded = [x for c in text for x in (folded_char(c) if ord(c) < 0x10000 else c)]
    for i, ch in enumerate(folded):
        if ch == "\0":
            continue
        if "a" <= ch <= "z":
            out.append(("latin", ch))
        elif ch in TONE_DIGITS and out and out[-1][0] == "latin" and (
                i + 1 == len(folded) or not folded[i + 1].isdigit()):
            continue
        elif _syllable(ch) >= 0:
            out.append(("cjk", ch))
        else:
            out.append(("literal", ch))
    merged: list[tuple[str, str]] = []
    for kind, ch in out:
        if kind == "latin" and merged and merged[-1][0] == "latin":
            merged[-1] = ("latin", merged[-1][1] + ch)
        else:
            merged.append((kind, ch))
    return merged


@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.sampled_from([*PIECES, "3", "35", "du3\u200b5", "a1b", "ǖ"]),
                     max_size=12).map("".join))
def test_spelled_pieces_are_the_characters_folded_one_by_one(text: str) -> None:
    from compliance.pinyin import _pieces

    assert [(p.kind, p.text) for p in _pieces(text)] == _pieces_one_by_one(text)


def test_native_hit_fields_of_a_filter_leave_the_garbage_collector_alone() -> None:
    """A key's entry (the ``words.Check`` tuple native.hits() reads, the Hit fields included)
    holds only str, int, bool and None, and the tables of entries are tuples, so a collection
    stops tracking them: a 100k-term filter has ~180k keys, and every full collection of the
    process would walk each tracked one (tests/unit/test_compliance_gc.py counts them all)."""
    terms = [Term("scam", "fraud", 4, Action.MASK), Term("赌博"), Term("ok", allow=True)]
    wf = WordFilter(terms, native_loops=True)
    gc.collect()
    tables = [values for a in (wf._plain, wf._pinyin) for _, values, _ in a.sources]
    keys = [k for values in tables for v in values for k in v]
    assert keys and not [k for k in keys if gc.is_tracked(k)]
    assert not [v for v in tables if gc.is_tracked(v)]
    text = "SCAM 赌博"
    got = _native_hits(native.fold(text), text, wf._plain.sources)[0]
    assert [h.action for h in got] == [Action.MASK, Action.BLOCK]


def test_a_compile_leaves_its_tables_untracked_without_a_collection() -> None:
    """The collector would untrack a filter's nested tuples over its next few collections,
    the first full ones walking what is left (~75k objects of a 100k-term filter); the
    extension's untrack() does it as the compile ends (_untrack.c)."""
    gc.disable()
    try:
        wf = WordFilter(TERMS, native_loops=True)
        autos = (wf._plain, wf._pinyin, *(g.auto for g in wf._spelled))
        tables = [v for a in autos for v in (a.values, *(v for _, v in a.walks))]
        entries = [e for t in tables for v in t for e in v]
        nested = [x for e in entries for x in e if isinstance(x, tuple)]
        tracked = [x for x in (*tables, *entries, *nested) if gc.is_tracked(x)]
    finally:
        gc.enable()
    assert len(tables) >= 4 and len(nested) >= 10  # repeats, and spelled keys' units
    assert not tracked
    held = tuple([["x"], 1])  # a list may change: neither it nor what holds it is untracked
    assert native.untrack(tuple([held, tuple(["a", tuple([1, None])])])) == 2
    assert gc.is_tracked(held)
