"""Chinese flows: keywords found in unsegmented text (traditional and full-width too), and
numbers, money, dates and digit strings read the way a Mandarin prompt says them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.services import KeywordIntentMatcher
from flows.template import render
from tests.unit.test_flows_cli import make_app

BANKING = {"balance": ["查余额", "余额"], "agent": ["转人工", "人工服务"], "card": ["信用卡"]}


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("我想查余额", "balance"),
        ("帮我转人工", "agent"),
        ("我要人工服务谢谢", "agent"),
        ("我想查询一下信用卡账单", "card"),
        ("我想查詢餘額", "balance"),  # traditional characters
        ("幫我轉人工", "agent"),
        ("我想查余额。", "balance"),  # punctuation
        ("　我想查　余额！", "balance"),  # full-width space and exclamation mark
        ("今天天气不错", None),
        ("余", None),
    ],
)
def test_chinese_keywords_match_unsegmented_text(said: str, intent: str | None) -> None:
    assert KeywordIntentMatcher().match(said, BANKING) == intent


def test_negation_is_the_longer_phrase() -> None:
    yes_no = {"yes": ["是", "需要", "是的"], "no": ["不是", "不需要", "不用"]}
    m = KeywordIntentMatcher()
    assert m.match("是的", yes_no) == "yes"
    assert m.match("不是", yes_no) == "no"
    assert m.match("我不需要", yes_no) == "no"
    assert m.match("需要", yes_no) == "yes"


def test_full_width_latin_and_digits() -> None:
    m = KeywordIntentMatcher()
    assert m.match("我是ＶＩＰ客户", {"vip": ["vip客户"]}) == "vip"
    assert m.match("按１号键", {"one": ["1号"]}) == "one"


def test_a_keyword_does_not_match_inside_a_longer_word() -> None:
    m = KeywordIntentMatcher()
    assert m.match("我要办信用卡", {"x": ["用卡"]}) is None  # 信用卡 is one word
    assert m.match("my cardholder", {"x": ["card"]}) is None


def test_english_is_unchanged() -> None:
    m = KeywordIntentMatcher()
    intents = {"agent": ["agent", "a person"], "card": ["credit card"], "other": ["card"]}
    assert m.match("I'd like to talk to an agent, please", intents) == "agent"
    assert m.match("my Credit Card was stolen", intents) == "card"
    assert m.match("gift card", intents) == "other"


def test_the_segmenter_ships_its_dictionary() -> None:
    import jieba

    assert (Path(jieba.__file__).parent / "dict.txt").stat().st_size > 1_000_000


# --- reading numbers aloud --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "zh", "en"),
    [
        (1234.5, "一千二百三十四元五角", "1234 dollars and 50 cents"),
        ("1234.56", "一千二百三十四元五角六分", "1234 dollars and 56 cents"),
        (1004.05, "一千零四元零五分", "1004 dollars and 5 cents"),
        (0.05, "五分", "0 dollars and 5 cents"),
        (10, "十元", "10 dollars and 0 cents"),
        (100010, "十万零一十元", "100010 dollars and 0 cents"),
        (-3.2, "负三元二角", "minus 3 dollars and 20 cents"),
        ("\uff11\uff12.\uff15", "十二元五角", "12 dollars and 50 cents"),  # full-width digits
    ],
)
def test_money_per_locale(amount: Any, zh: str, en: str) -> None:
    assert render("{{ a | money }}", {"a": amount, "language": "zh-CN"}) == zh
    assert render("{{ a | money }}", {"a": amount, "language": "en-US"}) == en
    assert render("{{ a | money('zh-CN') }}", {"a": amount}) == zh


@pytest.mark.parametrize(
    ("value", "zh"),
    [
        (0, "零"),
        (15, "十五"),
        (110, "一百一十"),
        (1010, "一千零一十"),
        (20000, "二万"),
        (100000001, "一亿零一"),
        (1002003004, "十亿零二百万三千零四"),
        (1234.5, "一千二百三十四点五"),
        (-0.25, "负零点二五"),
    ],
)
def test_numbers_in_chinese(value: Any, zh: str) -> None:
    assert render("{{ v | number }}", {"v": value, "language": "zh-CN"}) == zh


def test_digit_strings_dates_per_locale() -> None:
    zh = {"language": "zh-CN", "phone": "138 0013 8000", "code": "12*#", "day": "2024-03-05"}
    assert render("{{ phone | digits }}", zh) == "幺三八零零幺三八零零零"
    assert render("{{ code | digits }}", zh) == "幺二星井"
    assert render("{{ day | date }}", zh) == "2024年3月5日"
    en = {**zh, "language": "en-US"}
    assert render("{{ phone | digits }}", en) == "1 3 8 0 0 1 3 8 0 0 0"
    assert render("{{ day | date }}", en) == "March 5, 2024"
    assert render("{{ 1234.5 | number }}", en) == "1234.5"


def test_numbers_too_large_to_read_are_template_errors() -> None:
    from flows.expr import ExprError

    with pytest.raises(ExprError, match="too large to read out"):
        render("{{ v | money }}", {"v": 10**20, "language": "zh-CN"})
    with pytest.raises(ExprError, match="ISO date"):
        render("{{ v | date }}", {"v": "tomorrow"})


# --- a small Mandarin banking flow, end to end through ivr flow test ------------------------------

ZH_FLOW = {
    "id": "zh_bank",
    "name": "中文银行",
    "language": "zh-CN",
    "variables": {"balance": 1234.5},
    "nodes": [
        {"id": "start", "type": "start"},
        {
            "id": "menu",
            "type": "menu",
            "params": {
                "prompt": {"text": "您好，查余额请按1，转人工请按0。"},
                "options": [
                    {"port": "balance", "digits": ["1"], "keywords": ["查余额", "余额"]},
                    {"port": "agent", "digits": ["0"], "keywords": ["转人工", "人工服务"]},
                ],
            },
        },
        {
            "id": "say_balance",
            "type": "hangup",
            "params": {"prompt": {"text": "您的余额是{{ balance | money }}。再见。"}},
        },
        {"id": "agent", "type": "transfer", "params": {"target": "sip:agents@127.0.0.1:5090"}},
        {"id": "sorry", "type": "hangup", "params": {"prompt": {"text": "抱歉，再见。"}}},
    ],
    "edges": [
        {"from": "start", "port": "next", "to": "menu"},
        {"from": "menu", "port": "balance", "to": "say_balance"},
        {"from": "menu", "port": "agent", "to": "agent"},
        {"from": "menu", "port": "no_input", "to": "sorry"},
        {"from": "menu", "port": "no_match", "to": "sorry"},
        {"from": "agent", "port": "failed", "to": "sorry"},
    ],
}
ZH_CASES = {
    "flow": "zh_bank.json",
    "cases": [
        {
            "name": "按键查余额",
            "steps": [
                {"send_dtmf": "1"},
                {"expect_prompt": "您的余额是一千二百三十四元五角"},
                {"expect_end": "hangup"},
            ],
        },
        {
            "name": "说我想查余额",
            "steps": [
                {"say": "我想查余额"},
                {"expect_prompt": "一千二百三十四元五角"},
                {"expect_end": "hangup"},
            ],
        },
        {
            "name": "说帮我转人工",
            "steps": [
                {"say": "帮我转人工"},
                {"expect_transfer": "sip:agents@127.0.0.1:5090"},
                {"expect_end": "transferred"},
            ],
        },
        {"name": "按0转人工", "steps": [{"send_dtmf": "0"}, {"expect_end": "transferred"}]},
    ],
}


def test_a_mandarin_banking_flow_passes_all_its_cases(tmp_path: Path) -> None:
    (tmp_path / "zh_bank.json").write_text(json.dumps(ZH_FLOW, ensure_ascii=False), "utf-8")
    cases = tmp_path / "zh_bank.cases.json"
    cases.write_text(json.dumps(ZH_CASES, ensure_ascii=False), "utf-8")
    res = CliRunner().invoke(make_app(), ["flow", "test", str(cases)])
    assert res.exit_code == 0, res.output
    assert "4 passed, 0 failed" in res.output
