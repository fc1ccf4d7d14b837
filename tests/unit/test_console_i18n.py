"""The console's two catalogs (console/static/i18n/{zh-CN,en}.json) carry the same keys, none
empty, every key the code names literally exists, and the code shows no literal words itself
(user-visible text comes from the catalogs; a missing key renders as ⟦key⟧ in the browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "console" / "static"
KEY_USES = [re.compile(p) for p in (r'\bt\("([a-z_][\w.-]*)"', r'i18n: "([\w.-]+)"',
                                     r'label: "([\w.-]+)"', r'field\("([\w.-]+)"',
                                     r'btn\("([\w.-]+)"')]
# an element given literal words: text: "Save", textContent = "Save", placeholder: "Search"
LITERAL_TEXT = re.compile(
    r'(?:text|title|placeholder|textContent)\s*[:=]\s*"[^"]*[A-Za-z\u4e00-\u9fff]{2}')
PLACEHOLDER_OK = re.compile(r'placeholder: "(?:\+[\d*]+|sip:[^"]*)"')  # number/URI examples


def catalog(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC / "i18n" / f"{name}.json").read_text("utf-8"))
    return data


def code() -> dict[Path, str]:
    return {p: p.read_text("utf-8") for p in sorted((STATIC / "js").rglob("*.js"))}


def test_both_catalogs_have_the_same_keys_and_no_empty_text() -> None:
    en, zh = catalog("en"), catalog("zh-CN")
    assert set(en) == set(zh), set(en) ^ set(zh)
    assert [k for k, v in {**en, **zh}.items() if not v.strip()] == []
    # the Chinese catalog is Chinese: most of its entries carry CJK characters
    cjk = sum(bool(re.search(r"[\u4e00-\u9fff]", v)) for v in zh.values())
    assert cjk / len(zh) > 0.8


def test_every_key_the_code_names_is_in_the_catalogs() -> None:
    en = catalog("en")
    used = {k for src in code().values() for rx in KEY_USES for k in rx.findall(src)}
    assert len(used) > 150
    assert sorted(k for k in used if k not in en and not k.endswith(".")) == []


def test_the_code_shows_no_literal_words() -> None:
    offenders = [f"{p.name}: {m.group(0)}" for p, src in code().items()
                 for m in LITERAL_TEXT.finditer(src) if not PLACEHOLDER_OK.match(src, m.start())]
    assert offenders == []
