"""The word scanner's fast paths find exactly what its array paths find.

Short text (ASR partials) is folded by ``str.translate`` with its way back in Python lists, and
the spelled pass spells only the stretches near a Latin letter without numpy; long text uses
numpy throughout. These tests run the same filter over random mixed text both ways (the fast
paths switched off by their thresholds) and require the same hits, spans and masking, and check
the building blocks against the array functions they stand in for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance import scantext
from compliance.normalize import (
    PINYIN_BASE,
    fold,
    fold_lists,
    fold_short,
    fold_table,
    pinyin_names,
    pinyin_table,
    sounds_short,
)
from compliance.pinyin import PinyinMode
from compliance.spelling import Atoms, latin_runs, near_latin, spell, spell_near
from compliance.words import Action, Term, WordFilter

TERMS = [
    Term("scam", "fraud"), Term("shit", "abuse", action=Action.MASK), Term("ass", "abuse"),
    Term("dick", "porn"), Term("Dickens", "porn", allow=True),
    Term("赌博", "fraud"), Term("刷单返利", "fraud"), Term("妈的", "abuse"),
    Term("傻逼", "abuse", pinyin=PinyinMode.HOMOPHONE, initials=True),
    Term("贱人", "abuse", pinyin=PinyinMode.HOMOPHONE), Term("加微信88", "fraud"),
    Term("QQ群", "fraud"), Term("加V信", "fraud", pinyin=PinyinMode.SPELLED),
    Term("哥哥", "custom", pinyin=PinyinMode.SPELLED), Term("办证", "fraud", pinyin=PinyinMode.OFF),
    Term("绿茶婊", "abuse"), Term("法轮功", "politics", initials=True), Term("profit", "fraud"),
]
# What evasive text is made of: the terms' characters and others, their pinyin (toned too),
# look-alike letters (some folding to several letters: ﬁ, ㎏), separators, digits, words that
# hold a term, emoji and a character that opencc folds beyond the BMP (U+346E).
PIECES = [
    "赌", "博", "刷", "单", "返", "利", "妈", "的", "傻", "逼", "沙", "比", "贱", "人", "坚", "韧",
    "加", "微", "信", "群", "哥", "绿", "茶", "婊", "法", "轮", "功", "办", "证", "今", "天", "很",
    "好", "du", "bo", "dǔ", "bó", "du3", "bo2", "sha", "bi", "ma", "de", "jia", "wei", "xin",
    "ge", "lv", "lu", "cha", "biao", "qun", "sb", "SB", "Q", "V", "qq", "8", "88", "12", "5",
    "scam", "ѕсаm", "sсam", "shit", "this hit", "as", "ass", "dick", "Dickens", "dubois",
    "made", "the", "an", " ", "  ", "\u200b", "-", ".", "*", "，", "。", "·", "🎲", "𝐬", "①",
    "\u346e", "ĳ", "ŋ", "Ж", "ﬁ", "ﬂ", "ǆ", "㎏", "🆐", "ﬀ",
    "pro", "t", "profit",
]


@contextmanager
def array_paths() -> Iterator[None]:
    """Every text through numpy folding and the numpy spelled pass."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scantext, "SHORT_TEXT", 0)
        mp.setattr(scantext, "NEAR_IN_PYTHON", -1)
        yield


@pytest.fixture(scope="module")
def wf() -> WordFilter:
    """The Python paths (the native loops are compared with them in test_compliance_native)."""
    return WordFilter(TERMS, native_loops=False)


def _hits(wf: WordFilter, text: str) -> tuple[list[tuple[int, int, str, bool, str]], str]:
    r = wf.scan(text)
    return [(h.start, h.end, h.term, h.via_pinyin, h.matched) for h in r.hits], r.masked_text


mixed_text = st.lists(st.sampled_from(PIECES), min_size=1, max_size=40).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mixed_text)
def test_fast_paths_find_what_the_array_paths_find(wf: WordFilter, text: str) -> None:
    fast = _hits(wf, text)
    with array_paths():
        assert _hits(wf, text) == fast


def test_property_test_text_does_hit_through_every_pass(wf: WordFilter) -> None:
    """The comparison above means something: its pieces make plain, spelled, homophone and
    look-alike hits."""
    hits = _hits(wf, "du博 ѕсаm 沙比 赌博 sb")[0]
    assert [(h[4], h[2], h[3]) for h in hits] == [
        ("du博", "赌博", True), ("ѕсаm", "scam", False), ("沙比", "傻逼", True),
        ("赌博", "赌博", False), ("sb", "傻逼", True)]


@settings(max_examples=150, deadline=None)
@given(text=mixed_text)
def test_short_folding_is_the_array_folding(text: str) -> None:
    f = fold(text)
    short = fold_short(text)
    if short is None:  # beyond the BMP: the array folding does it
        assert any(ord(c) > 0xFFFF for c in text)
        return
    kept, canon = short
    assert canon == f.text
    assert sounds_short(kept) == fold(text, pinyin=True).text
    lists = fold_lists(text)
    assert (lists.orig, lists.run_start, lists.run_len) == (
        f.orig.tolist(), f.run_start.tolist(), f.run_len.tolist())
    p = fold(text, pinyin=True)
    lists = fold_lists(text, pinyin=True)
    assert (lists.text, lists.orig, lists.run_start, lists.run_len) == (
        p.text, p.orig.tolist(), p.run_start.tolist(), p.run_len.tolist())


@settings(max_examples=150, deadline=None)
@given(text=mixed_text, reach=st.integers(1, 4))
def test_near_spelling_is_the_array_spelling(text: str, reach: int) -> None:
    """The stretches spelled without numpy are the array spelling with the far characters
    (``FAR`` runs) left out."""
    f = fold(text)
    runs = latin_runs(f)
    near = spell_near(f.text, runs, reach, limit=10_000)
    assert near is not None
    full = spell(f, near_latin(f, reach))
    width = np.asarray(full.width)
    starts = np.concatenate(([0], np.cumsum(width)))
    expect = [full.text[starts[a]:starts[b]] for a, b in near.segments]
    assert near.text.split("\1") == (expect or [""])


def test_letters_where_syllables_live_do_not_sound_chinese() -> None:
    """Syllables are code points from U+0100, where a few letters live that folding keeps
    (``ĳ``, ``ŋ``): those move aside in the syllable folding, so no text of such letters can
    sound like a homophone term."""
    n = len(pinyin_names())
    table, sounds = fold_table(), pinyin_table()
    kept = [cp for cp in range(PINYIN_BASE, PINYIN_BASE + n) if table[cp] == cp]
    assert len(kept) >= 2
    assert not any(PINYIN_BASE <= sounds[cp] < PINYIN_BASE + n for cp in kept)
    a, b = kept[:2]  # two such letters, and two characters with those syllables
    ch_a = chr(int(np.flatnonzero(sounds == a)[0]))
    ch_b = chr(int(np.flatnonzero(sounds == b)[0]))
    wf = WordFilter([Term(ch_a + ch_b, pinyin=PinyinMode.HOMOPHONE)])
    assert [h.term for h in wf.find(ch_a + ch_b)] == [ch_a + ch_b]
    assert not wf.find(chr(a) + chr(b))


def test_only_letters_inside_a_unit_spelling_can_be_spelled() -> None:
    """A letter no syllable (or literal letter) of the list covers is left out of the spelled
    pass: ``usb`` and ``xp`` are; ``du3bo`` (a tone digit between syllables) and ``V`` are not."""
    atoms = Atoms.of(["du", "bo", "v", "zhuang", "8"])
    f = fold("usb du3bo xp V zhuang赌 bdu")
    got = "".join(c.upper() if k else c for c, k in zip(f.text, atoms.covered(f), strict=True))
    assert got == "usbDU3BOxpVZHUANG赌bDU"


def test_long_text_with_english_still_finds_spellings(wf: WordFilter) -> None:
    """Long text full of letters no syllable covers goes through the numpy pass with those
    letters left out; the spellings in it are still found, where they are."""
    filler = "usb xp cpu thx 今天很好 " * 60
    text = filler + "来玩du博吧 " + filler + "d u b o " + filler + "sha比"
    hits = [(h.term, h.matched) for h in wf.find(text) if h.via_pinyin]
    assert hits == [("赌博", "du博"), ("赌博", "d u b o"), ("傻逼", "sha比")]
    with array_paths():
        assert [(h.term, h.matched) for h in wf.find(text) if h.via_pinyin] == hits
