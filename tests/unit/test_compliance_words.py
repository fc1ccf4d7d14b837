"""Sensitive words: every evasion with a positive and a negative case, allow-list, masking,
streaming across partial boundaries, import/export, hot reload and the publish/TTS hooks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compliance.hooks import BlockedText, FlowBlocked, assert_flow_publishable, guard_text
from compliance.normalize import fold
from compliance.wordlist import InMemoryWordStore, WordRegistry, export_terms, parse_terms
from compliance.words import Action, StreamingScanner, Term, TermError, WordFilter

TERMS = [
    Term("shit", "abuse"),
    Term("ass", "abuse", action=Action.MASK),
    Term("傻逼", "abuse", severity=4, pinyin=True),
    Term("法轮功", "politics", severity=5),
    Term("刷单返利", "fraud"),
    Term("dick", "porn"),
    Term("Dickens", allow=True),
    Term("赌博", "custom", action=Action.FLAG),
    Term("加微信88", "fraud"),
    Term("竞品公司", "competitor", tenant="acme"),
]


@pytest.fixture(scope="module")
def wf() -> WordFilter:
    return WordFilter(TERMS)


def terms_of(wf: WordFilter, text: str) -> list[str]:
    return [h.term for h in wf.scan(text).hits]


@pytest.mark.parametrize(("evasion", "positive", "negative"), [
    ("plain", "this is shit", "this is fine"),
    ("case", "SHIT happens", "SHIFT happens"),
    ("full-width", "ｓｈｉｔ", "ｓｈｉｆｔ"),
    ("full-width CJK digits", "加微信８８", "加微信８９"),
    ("traditional", "法輪功", "法輪大"),
    ("spaces between", "s h i t", "s h i f t"),
    ("symbols between", "傻*逼", "傻*子"),
    ("zero-width", "傻\u200b逼", "傻\u200b子"),
    ("punctuation CJK", "刷，单。返！利", "刷，单。返！回"),
    ("repeated chars", "shiiiiiit", "shiiiiift"),
    ("repeated CJK", "傻傻傻逼", "傻傻傻子"),
    ("number style 一", "加微信八八", "加微信八九"),
    ("number style ①", "加微信⑧⑧", "加微信⑧⑨"),
    ("number style 壹/捌", "加微信捌捌", "加微信捌玖"),
    ("homophone (pinyin opt-in)", "你是沙比", "你是沙子"),
    ("spelled pinyin", "ni shi shabi", "ni shi shabu"),
])
def test_evasion(wf: WordFilter, evasion: str, positive: str, negative: str) -> None:
    assert terms_of(wf, positive), f"{evasion}: {positive!r} should hit"
    assert not terms_of(wf, negative), f"{evasion}: {negative!r} should not hit"


def test_homophones_are_opt_in() -> None:
    wf = WordFilter([Term("傻逼", "abuse", pinyin=False)])
    assert not wf.scan("沙比").hits
    assert wf.scan("傻逼").hits


def test_latin_terms_respect_word_boundaries(wf: WordFilter) -> None:
    assert not terms_of(wf, "this hit")  # "s hit" is across words
    assert not terms_of(wf, "as was has")  # "ass" folds to "as" but needs two s's
    assert terms_of(wf, "kiss my asss") == ["ass"]
    assert terms_of(wf, "shit一下") == ["shit"]  # a Chinese numeral is not part of a Latin word
    assert not terms_of(wf, "shit1")


def test_allow_list_hides_term_inside_longer_word(wf: WordFilter) -> None:
    assert not terms_of(wf, "I read Dickens today")
    assert terms_of(wf, "what a dick") == ["dick"]


def test_hit_carries_span_category_severity_and_original_text(wf: WordFilter) -> None:
    text = "hello 傻 . 逼 world"
    (hit,) = wf.scan(text).hits
    assert (hit.start, hit.end) == (6, 11)
    assert text[hit.start:hit.end] == hit.matched == "傻 . 逼"
    assert (hit.term, hit.category, hit.severity, hit.action) == ("傻逼", "abuse", 4, Action.BLOCK)


def test_actions_block_mask_flag(wf: WordFilter) -> None:
    masked = wf.scan("bad ass")
    assert masked.masked_text == "bad ***" and not masked.blocked
    flagged = wf.scan("赌博网站")
    assert flagged.hits and flagged.masked_text == "赌博网站" and not flagged.blocked
    blocked = wf.scan("赌博和刷单返利")
    assert blocked.blocked and blocked.masked_text == "赌博和****"


def test_every_hit_is_returned(wf: WordFilter) -> None:
    hits = wf.scan("shit 傻逼 法轮功 shit").hits
    assert [h.term for h in hits] == ["shit", "傻逼", "法轮功", "shit"]


def test_tenant_terms_only_in_tenant_filter() -> None:
    reg = WordRegistry(InMemoryWordStore(TERMS))
    assert reg.filter_for("acme").scan("竞品公司").hits
    assert not reg.filter_for("other").scan("竞品公司").hits
    assert not reg.filter_for(None).scan("竞品公司").hits


@pytest.mark.parametrize(("pieces", "hit_at"), [
    (["hello 傻", "逼 there"], 1),
    (["s", "h", "i", "t"], 3),
    (["刷单", "，", "返", "利啊"], 3),
    (["sh", "iiii", "t"], 2),
    (["shi", "t"], 1),
])
def test_streaming_hit_when_last_char_arrives(wf: WordFilter, pieces: list[str],
                                              hit_at: int) -> None:
    s = StreamingScanner(wf)
    results = [s.feed(p) for p in pieces]
    assert [i for i, r in enumerate(results) if r] == [hit_at]
    assert len(s.hits) == 1


def test_streaming_no_false_hit_and_span_is_absolute(wf: WordFilter) -> None:
    s = StreamingScanner(wf)
    assert s.feed("this ") == [] and s.feed("hit ") == []  # "s hit" across words: no hit
    filler = "一些正常的话 " * 50
    s.feed(filler)
    (hit,) = s.feed("傻逼")
    whole = "this hit " + filler + "傻逼"
    assert whole[hit.start:hit.end] == "傻逼"


def test_streaming_reports_a_growing_hit_once(wf: WordFilter) -> None:
    s = StreamingScanner(wf)
    assert [h.term for h in s.feed("傻逼")] == ["傻逼"]
    assert s.feed("逼逼") == [] and s.feed("，傻逼") != []
    assert len(s.hits) == 2


def test_streaming_memory_is_bounded(wf: WordFilter) -> None:
    s = StreamingScanner(wf)
    for _ in range(2000):
        s.feed("正常的对话内容 ")
    assert len(s._buf) < 200
    (hit,) = s.feed("法轮功")
    assert hit.start == 2000 * 8


def test_streaming_latin_waits_for_boundary_free_end(wf: WordFilter) -> None:
    s = StreamingScanner(wf)
    assert s.feed("shift") == []  # never "shit"
    assert s.feed(" ok") == []


def test_fold_keeps_map_to_original() -> None:
    f = fold("Ａ-Ｂ  b")
    assert f.text == "ab"
    assert f.span(0, 1) == (0, 6)


def test_term_validation_names_field() -> None:
    with pytest.raises(TermError, match="category"):
        Term("x", "weather")
    with pytest.raises(TermError, match="severity"):
        Term("x", severity=9)
    with pytest.raises(TermError, match="term"):
        Term("  ")
    with pytest.raises(TermError, match="term"):
        Term("!!!")


def test_csv_round_trip_and_bad_rows() -> None:
    src = ("term,category,severity,action,tenant,pinyin,allow\n"
           "傻逼,abuse,4,block,,1,0\n"
           "x,weather,3,block,,0,0\n"
           "y,abuse,nine,block,,0,0\n"
           "z,abuse,3,explode,,0,0\n"
           "shit,abuse,2,mask,acme,0,0\n")
    terms, errors = parse_terms(src)
    assert [t.text for t in terms] == ["傻逼", "shit"]
    assert [e.line for e in errors] == [3, 4, 5]
    assert errors[0].column == "category" and "not one of" in errors[0].reason
    again, errs = parse_terms("".join(export_terms(terms)))
    assert again == terms and not errs


def test_txt_one_term_per_line() -> None:
    terms, errors = parse_terms("\ufeff# comment\n赌博\n\n  法轮功 \n", defaults=Term(
        "x", "politics", 5, Action.BLOCK))
    assert [(t.text, t.category, t.severity) for t in terms] == [
        ("赌博", "politics", 5), ("法轮功", "politics", 5)]
    assert not errors
    assert "".join(export_terms(terms, fmt="txt")) == "赌博\n法轮功\n"


def test_hot_reload_from_store_and_file(tmp_path: Path) -> None:
    store = InMemoryWordStore([Term("shit", "abuse")])
    words = tmp_path / "words.txt"
    words.write_text("赌博\n", "utf-8")
    reg = WordRegistry(store, words_file=words)
    assert reg.refresh()
    first = reg.filter_for()
    assert first.scan("赌博").blocked and not first.scan("傻逼").hits
    assert reg.filter_for() is first  # cached while nothing changes
    store.add_terms([Term("傻逼", "abuse")])
    assert reg.filter_for().scan("傻逼").blocked
    words.write_text("赌博\n刷单\n", "utf-8")
    os.utime(words, (1, 1))
    assert reg.refresh() and not reg.refresh()
    assert reg.filter_for().scan("刷单").blocked
    store.remove_term("shit", None)
    assert not reg.filter_for().scan("shit").hits


def test_guard_text_blocks_tts_and_sms(wf: WordFilter) -> None:
    assert guard_text("you are an ass", wf) == "you are an ***"
    with pytest.raises(BlockedText, match="傻逼") as exc:
        guard_text("欢迎致电 傻逼", wf, where="sms")
    assert exc.value.hits[0].term == "傻逼"


def test_flow_publish_names_the_node(wf: WordFilter) -> None:
    flow = {"nodes": [
        {"id": "start", "type": "say", "params": {"text": "欢迎致电"}},
        {"id": "menu", "type": "menu", "params": {"prompts": ["press 1", "刷 单 返 利"]}},
        {"id": "sms1", "type": "sms", "params": {"template": {"body": "赌博 ok"}}},
    ], "edges": []}
    with pytest.raises(FlowBlocked) as exc:
        assert_flow_publishable(flow, wf)
    (problem,) = exc.value.problems
    assert problem.node_id == "menu" and problem.field == "prompts[1]"
    assert "node menu" in str(exc.value)
    flow["nodes"][1]["params"]["prompts"][1] = "press 2"
    assert_flow_publishable(flow, wf)  # the flagged SMS does not block
