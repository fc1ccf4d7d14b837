"""Evasions found by trying the product as a user would (issue 20): look-alike letters per
script, pinyin full / mixed / toned / initials, with and without separators, each with a
negative case; and the false-positive rate of the new foldings on ordinary text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from compliance.confusables import confusable_map, expansion_map
from compliance.normalize import fold
from compliance.pinyin import PinyinMode, english_words, term_spelling
from compliance.wordlist import read_terms
from compliance.words import StreamingScanner, Term, WordFilter
from tests import compliance_corpus

TERMS = [
    Term("scam", "fraud"),
    Term("porn", "porn"),
    Term("赌博", "fraud"),
    Term("刷单返利", "fraud"),
    Term("妈的", "abuse"),
    Term("傻逼", "abuse", pinyin=PinyinMode.HOMOPHONE, initials=True),
    Term("绿茶婊", "abuse"),
    Term("加微信88", "fraud"),
    Term("办证", "fraud", pinyin=PinyinMode.OFF),
]
FIXTURE = Path(__file__).parents[1] / "fixtures" / "compliance" / "terms_zh.csv"


@pytest.fixture(scope="module")
def wf() -> WordFilter:
    return WordFilter(TERMS)


def found(wf: WordFilter, text: str) -> list[tuple[str, str]]:
    return [(h.term, h.matched) for h in wf.scan(text).hits]


@pytest.mark.parametrize(("script", "positive", "negative"), [
    ("Cyrillic, whole word", "this is a ѕсаm", "это сам и всё"),  # Russian "сам" is not scam
    ("Cyrillic, one letter", "a sсam call", "a scan call"),
    ("Cyrillic capitals", "SСАM ALERT", "СКАЖИ АЛЛО"),
    ("Greek", "free ροrn here", "καλημέρα ρόδο"),
    ("Latin small capitals and IPA", "ꜱᴄɑm", "ꜱᴄɑn"),
    ("full-width", "ｓｃａｍ", "ｓｃａｎ"),
    ("mathematical bold", "𝐬𝐜𝐚𝐦", "𝐬𝐜𝐚𝐧"),
    ("mathematical script", "𝓼𝓬𝓪𝓶", "𝓼𝓬𝓪𝓷"),
    ("circled", "ⓢⓒⓐⓜ", "ⓢⓒⓐⓝ"),
    ("accents", "scàm", "scàn"),
    ("spaced and dotted look-alikes", "s.с.а.m", "s.с.а.n"),
    ("zero-width between look-alikes", "ѕ\u200bсаm", "ѕ\u200bсаn"),
])
def test_look_alike_letters(wf: WordFilter, script: str, positive: str, negative: str) -> None:
    hits = wf.scan(positive).hits
    assert [h.term for h in hits] in (["scam"], ["porn"]), f"{script}: {positive!r}"
    (hit,) = hits
    assert positive[hit.start:hit.end] == hit.matched  # offsets point into the original
    assert not wf.scan(negative).hits, f"{script}: {negative!r} must not hit"


def test_look_alike_hit_is_masked_in_place(wf: WordFilter) -> None:
    r = wf.scan("call now: ѕсаm!")
    assert r.masked_text == "call now: ****!" and r.blocked


SKELETON_TERMS = [Term("profit", "fraud"), Term("scam", "fraud"), Term("ish", "custom"),
                  Term("冰毒kg", "fraud"), Term("dzone", "custom")]


@pytest.mark.parametrize(("how", "text", "term", "matched"), [
    ("ligature inside the hit", "big proﬁt now", "profit", "proﬁt"),
    ("ligatures before the hit", "ﬁﬂ ﬀ scam", "scam", "scam"),
    ("digraph", "the ǆone", "dzone", "ǆone"),
    ("squared unit", "出售冰毒㎏装", "冰毒kg", "冰毒㎏"),
])
def test_one_to_many_look_alikes_keep_original_offsets(how: str, text: str, term: str,
                                                       matched: str) -> None:
    """TR39 skeletons longer than the character (ﬁ -> fi, ǆ -> dz, ㎏ -> kg) fold to all their
    letters, and the hit still spans the original characters, for highlighting and masking."""
    r = WordFilter(SKELETON_TERMS).scan(text)
    assert [(h.term, h.matched) for h in r.hits] == [(term, matched)], how
    (hit,) = r.hits
    assert text[hit.start:hit.end] == matched
    assert r.masked_text == text[:hit.start] + "*" * len(matched) + text[hit.end:]


@pytest.mark.parametrize(("how", "text"), [
    ("a word inside a ligature's letters is not a word", "ﬁsh and ﬁshes"),
    ("another ligature", "big proﬂt now"),
    ("a word goes on after the ligature", "proﬁts"),
    ("another unit", "出售冰毒㎎装"),
    ("digraph of other letters", "the ǉone"),
])
def test_one_to_many_look_alikes_negative(how: str, text: str) -> None:
    assert not WordFilter(SKELETON_TERMS).scan(text).hits, how


def test_skeleton_expansions_are_letters_and_leave_ascii_alone() -> None:
    got = expansion_map()
    assert (got[ord("ﬁ")], got[ord("ǆ")], got[ord("㎏")], got[ord("Ĳ")]) == ("fi", "dz", "kg", "ij")
    assert all(cp >= 0x80 and len(v) > 1 and v.isascii() and v.isalpha()
               for cp, v in got.items())
    assert ord("m") not in got  # rn <-> m (several letters for one) stays out
    assert fold("ﬁ ǆ").text == "fidz" and fold("rn").text == "rn"


@pytest.mark.parametrize("text", [
    "中华人民共和国成立于一九四九年", "明天下午三点开会，请准时参加。", "フォルダを開く",
    "the quick brown fox jumps over the lazy dog", "Привет, как дела?", "Γειά σου κόσμε",
    "Ⅻ点钟 × 3", "scampi and clams", "sam is a cam operator",
])
def test_folding_leaves_innocent_text_alone(wf: WordFilter, text: str) -> None:
    assert not wf.scan(text).hits


def test_folding_never_touches_ascii_or_chinese() -> None:
    """Only letters of the listed scripts are remapped: ASCII and CJK fold as they always did."""
    mapped = confusable_map()
    assert not [cp for cp in mapped if cp < 0x80 or 0x3400 <= cp <= 0x9FFF]
    assert fold("l1I0O").text == "l1i0o"  # no TR39 l/1/I or 0/O merging inside ASCII
    assert ord("×") not in mapped and ord("ー") not in mapped


@pytest.mark.parametrize(("how", "positive", "negative"), [
    ("full, no separator", "来玩dubo吧", "dubois 先生"),
    ("full, spaced", "du bo 网站", "du ba 网站"),
    ("full, dashed capitals", "DU-BO", "DU-BA"),
    ("full, tone marks", "dǔ bó", "dǔ bà"),
    ("full, tone numbers", "du3 bo2", "du3 ba2"),
    ("mixed, Latin first", "du博", "du搏"),
    ("mixed, Latin last", "赌bo", "赌ba"),
    ("mixed, spaced", "du 博 啊", "du 搏 啊"),
    ("mixed in a sentence", "我们一起来du博吧", "我们一起读博吧"),
    ("full-width Latin", "ｄｕｂｏ", "ｄｕｂａ"),
    ("four syllables, mixed", "shua单返li", "shua单返回"),
    ("ü written v or u", "lvchabiao", "lvchabiaoge"),
    ("ü written u, mixed", "lu茶婊", "lu茶杯"),
    ("digits kept", "jiaweixin88", "jiaweixin89"),
    ("homophone (opt-in)", "你个沙比", "沙子"),
    ("homophone mixed with Latin", "sha笔", "sha子"),
    ("initials (opt-in)", "你是SB吗", "USB接口"),
    ("initials dotted", "s.b.", "sbc"),
])
def test_pinyin_spellings(wf: WordFilter, how: str, positive: str, negative: str) -> None:
    hits = wf.scan(positive).hits
    assert hits and all(h.via_pinyin for h in hits), f"{how}: {positive!r}"
    for h in hits:
        assert positive[h.start:h.end] == h.matched
    assert not wf.scan(negative).hits, f"{how}: {negative!r} must not hit"


def test_pinyin_that_is_an_english_word_needs_opt_in() -> None:
    assert "made" in english_words()
    auto = WordFilter([Term("妈的")])
    assert not auto.scan("I made it").hits and auto.scan("ma的").hits
    forced = WordFilter([Term("妈的", pinyin=PinyinMode.SPELLED)])
    assert forced.scan("you made it").hits


def test_modes_off_per_term_and_per_category() -> None:
    assert not WordFilter([Term("办证", pinyin=PinyinMode.OFF)]).scan("banzheng").hits
    assert WordFilter([Term("办证")]).scan("banzheng").hits
    off = WordFilter([Term("办证", "fraud")], category_pinyin={"fraud": PinyinMode.OFF})
    assert not off.scan("banzheng").hits and off.scan("办证").hits
    homophones = WordFilter([Term("赌博", "fraud")],
                            category_pinyin={"fraud": PinyinMode.HOMOPHONE})
    assert homophones.scan("堵搏").hits
    assert not WordFilter([Term("赌博", "fraud")]).scan("堵搏").hits  # homophones are opt-in


def test_single_character_terms_get_no_automatic_pinyin() -> None:
    assert term_spelling("死", PinyinMode.AUTO) is None
    assert not WordFilter([Term("死")]).scan("si").hits
    assert WordFilter([Term("死", pinyin=PinyinMode.SPELLED)]).scan("qu si ba").hits


def test_streaming_finds_a_spelling_split_across_partials(wf: WordFilter) -> None:
    s = StreamingScanner(wf)
    assert s.feed("我们去du") == []
    (hit,) = s.feed("博吧")
    assert (hit.term, hit.via_pinyin) == ("赌博", True)
    assert "我们去du博吧"[hit.start:hit.end] == "du博"


FP_GOAL = 0.001  # at most 0.1 % of ordinary sentences flagged by the new foldings


def _extra_flags(terms: list[Term], sentences: list[str]) -> tuple[int, list[str]]:
    literal = WordFilter([replace(t, pinyin=PinyinMode.OFF, initials=False) for t in terms])
    full = WordFilter(terms)
    extra = [s for s in sentences if full.find(s) and not literal.find(s)]
    return len(extra), extra[:10]


@pytest.mark.parametrize("corpus", ["peoples_daily", "reviews", "english"])
def test_new_foldings_flag_at_most_0_1_percent_of_ordinary_sentences(corpus: str) -> None:
    """The operator's list as shipped in the fixture (default pinyin for most terms, homophones
    and initials for abuse terms) on 20k sentences of each corpus (tests/compliance_corpus.py);
    what the foldings add beyond the literal characters must stay under the goal."""
    terms = read_terms(FIXTURE).terms
    sentences = list(getattr(compliance_corpus, corpus)())[:20_000]
    n, examples = _extra_flags(terms, sentences)
    assert n <= FP_GOAL * len(sentences), f"{n} of {len(sentences)}: {examples}"


def test_spellings_in_long_text_are_found_where_they_are(wf: WordFilter) -> None:
    """Long texts take the array path, which spells only the stretches near Latin letters."""
    filler = "今天天气很好，我们一起去公园散步吧。" * 40
    text = filler + "来玩du博吧" + filler + "ѕсаm" + filler + "赌bo" + filler
    hits = [(h.term, h.matched) for h in wf.scan(text).hits]
    assert hits == [("赌博", "du博"), ("scam", "ѕсаm"), ("赌博", "赌bo")]
    (first, _, third) = wf.scan(text).hits
    assert text[first.start:first.end] == "du博" and text[third.start:third.end] == "赌bo"
    assert not wf.scan(filler * 3 + "du搏" + filler).hits
