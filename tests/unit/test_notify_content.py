"""What may be sent: sensitive words (the compliance filter itself) checked with the variables
filled in, the culprit variable named; links only to allowed domains; templates checked when
saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.words import Action, Term, WordFilter
from notify.content import (
    ContentPolicy,
    ContentRefused,
    SmsTemplate,
    TemplateStore,
    host_allowed,
    links,
    with_signature,
)
from storage import open_database

FILTER = WordFilter([Term("发票", "fraud"), Term("赌博", "fraud"), Term("傻瓜", "abuse",
                                                                   action=Action.MASK)])
POLICY = ContentPolicy(words=lambda tenant: FILTER, allowed_domains=("acme.cn", "t.cn"))


def test_blocked_word_in_a_variable_names_term_and_variable() -> None:
    with pytest.raises(ContentRefused) as e:
        POLICY.check_text("default", "尊敬的代开发票客户，您好", {"name": "代开发票", "n": 3})
    assert e.value.code == "blocked_term"
    assert "发票" in str(e.value) and "variable name" in str(e.value)


def test_a_masked_term_does_not_block() -> None:
    POLICY.check_text("default", "你这个傻瓜", {})


def test_clean_text_passes() -> None:
    POLICY.check_text("default", "您的验证码是1234，请勿告诉他人", {"code": "1234"})


@pytest.mark.parametrize(("text", "hosts"), [
    ("详情 https://www.acme.cn/a?b=1 谢谢", ["www.acme.cn"]),
    ("点击 t.cn/AbC123 查看", ["t.cn"]),
    ("访问 www.evil.com 领奖", ["www.evil.com"]),
    ("金额3.14元，版本v1.2", []),
])
def test_links_are_found(text: str, hosts: list[str]) -> None:
    assert links(text) == hosts


def test_links_only_to_allowed_domains() -> None:
    POLICY.check_text("default", "查看 https://m.acme.cn/o/1", {})
    with pytest.raises(ContentRefused, match="evil.com is not on the allow-list"):
        POLICY.check_text("default", "查看 http://evil.com/x", {})
    with pytest.raises(ContentRefused, match="acme.cn.evil.com"):
        POLICY.check_text("default", "查看 http://acme.cn.evil.com/x", {})
    assert not host_allowed("notacme.cn", ["acme.cn"])


def test_template_is_checked_when_saved(tmp_path: Path) -> None:
    store = TemplateStore(open_database(f"sqlite:///{tmp_path}/t.sqlite"), POLICY)
    store.save(SmsTemplate("acme", "missed", "您有一个未接来电，回电 {{ callee }}", "Acme"), 1.0)
    assert store.get("acme", "missed") == SmsTemplate(
        "acme", "missed", "您有一个未接来电，回电 {{ callee }}", "Acme")
    assert store.get("other", "missed") is None
    with pytest.raises(ContentRefused, match="赌博"):
        store.save(SmsTemplate("acme", "bad", "在线赌博 {{ x }}"), 1.0)
    with pytest.raises(ContentRefused, match="never closed"):
        store.save(SmsTemplate("acme", "broken", "您好 {{ name "), 1.0)
    with pytest.raises(ContentRefused, match="template_id"):
        store.save(SmsTemplate("acme", "有 空格", "x"), 1.0)
    assert [t.template_id for t in store.all("acme")] == ["missed"]


def test_signature_goes_in_front_once() -> None:
    assert with_signature("您好", "Acme") == "【Acme】您好"
    assert with_signature("【Acme】您好", "Acme") == "【Acme】您好"
    assert with_signature("您好", "") == "您好"
