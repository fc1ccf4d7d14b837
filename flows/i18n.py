"""Reading numbers, money, dates and digit strings aloud, per locale (zh-CN and English).

A prompt template says ``{{ balance | money }}``; what the caller should hear depends on the flow's
language: "1234 dollars and 50 cents" in an English flow, "一千二百三十四元五角" in a Mandarin one.
The filters in :mod:`flows.template` call these functions with the locale of the flow (or the
prompt); everything here is pure and bounded (numbers past :data:`MAX_SPOKEN` are refused, not
spelled out for a minute).

Unicode digits: every decimal digit character (Unicode category Nd: ASCII, full-width ``１``,
Arabic-Indic ``١``...) counts as the digit it stands for, here and in the expression language;
other numeric characters (``²``, ``½``, ``五``) are not digits.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

MAX_SPOKEN = 10**16  # 一亿亿 / ten quadrillion: anything larger is not read out as a number
MAX_NUMBER_TEXT_CHARS = 100
ZH_DIGITS = "零一二三四五六七八九"
ZH_PHONE_DIGITS = "零幺二三四五六七八九"  # digit by digit, 1 is read yāo (幺) on the phone
_ZH_SYMBOLS = {"*": "星", "#": "井", "+": "加"}
_ZH_SMALL_UNITS = ("", "十", "百", "千")
_ZH_BIG_UNITS = ("", "万", "亿", "万亿")
_EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_CENT = Decimal("0.01")
_NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def locale_of(language: str | None) -> str:
    """``zh`` for Chinese language tags (zh, zh-CN, cmn-Hans...), else ``en``."""
    tag = (language or "").strip().lower()
    return "zh" if tag.startswith(("zh", "cmn")) else "en"


def ascii_digits(text: str) -> str:
    """Every Unicode decimal digit replaced by its ASCII digit; other characters unchanged."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c for c in text
    )


def to_decimal(value: object, what: str = "number") -> Decimal:
    """An exact decimal for int, float or numeric text; ValueError/TypeError say why not."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{what} needs a number, got {type(value).__name__}")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} needs a finite number, got {value}")
        d = Decimal(repr(value))
    elif isinstance(value, str):
        text = ascii_digits(value.strip())
        if len(text) > MAX_NUMBER_TEXT_CHARS or not _NUMBER_RE.match(text):
            raise ValueError(f"{what} needs a number, got text {value[:20]!r}")
        d = Decimal(text)
    else:
        raise TypeError(f"{what} needs a number, got {type(value).__name__}")
    if abs(d) >= MAX_SPOKEN:
        raise ValueError(f"{what} {value} is too large to read out (limit {MAX_SPOKEN:.0e})")
    return d


# --- Chinese numerals ---------------------------------------------------------------------------


def _zh_section(n: int) -> str:
    """0 < n < 10000, with 零 for inner gaps (1010 -> 一千零一十)."""
    out: list[str] = []
    gap = False
    for power in (3, 2, 1, 0):
        d = n // 10**power % 10
        if d == 0:
            gap = bool(out)
            continue
        if gap:
            out.append("零")
            gap = False
        out.append(ZH_DIGITS[d] + _ZH_SMALL_UNITS[power])
    return "".join(out)


def zh_integer(n: int) -> str:
    """0 <= n < 10**16 in Chinese numerals: 10 -> 十, 1010 -> 一千零一十, 100001 -> 十万零一."""
    if n == 0:
        return "零"
    sections: list[int] = []
    while n:
        n, rest = divmod(n, 10_000)
        sections.append(rest)
    out: list[str] = []
    zero_pending = False
    for index in range(len(sections) - 1, -1, -1):
        sec = sections[index]
        if sec == 0:
            zero_pending = bool(out)
            continue
        if out and (zero_pending or sec < 1000):
            out.append("零")
        out.append(_zh_section(sec) + _ZH_BIG_UNITS[index])
        zero_pending = False
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text  # 十五, not 一十五


def _split(d: Decimal) -> tuple[str, int, str]:
    sign = "-" if d < 0 else ""
    whole, _, frac = format(abs(d), "f").partition(".")
    return sign, int(whole), frac.rstrip("0")


def read_number(value: object, locale: str) -> str:
    """1234.5 -> '一千二百三十四点五' (zh) or '1234.5' (en)."""
    sign, whole, frac = _split(to_decimal(value))
    if locale == "zh":
        text = zh_integer(whole) + ("点" + "".join(ZH_DIGITS[int(c)] for c in frac) if frac else "")
        return ("负" if sign else "") + text
    return f"{sign}{whole}" + (f".{frac}" if frac else "")


def read_money(value: object, locale: str) -> str:
    """Rounded to cents: '一千二百三十四元五角' (zh) or '1234 dollars and 50 cents' (en)."""
    d = to_decimal(value, "money").quantize(_CENT, rounding=ROUND_HALF_UP)
    sign = "-" if d < 0 else ""
    whole, cents = divmod(int(abs(d) * 100), 100)
    if locale != "zh":
        return f"{'minus ' if sign else ''}{whole} dollars and {cents} cents"
    jiao, fen = divmod(cents, 10)
    parts: list[str] = []
    if whole:
        parts.append(zh_integer(whole) + "元")
    if jiao:
        parts.append(ZH_DIGITS[jiao] + "角")
    elif fen and whole:
        parts.append("零")
    if fen:
        parts.append(ZH_DIGITS[fen] + "分")
    text = "".join(parts) or "零元"
    return ("负" if sign and text != "零元" else "") + text


def read_digits(value: object, locale: str) -> str:
    """A digit string read one by one: '1 2 3 4' (en) or '幺二三四' (zh; * and # as 星 井)."""
    text = ascii_digits("" if value is None else str(value))
    chars = [c for c in text if not c.isspace()]
    if locale == "zh":
        return "".join(
            ZH_PHONE_DIGITS[int(c)] if c.isascii() and c.isdigit() else _ZH_SYMBOLS.get(c, c)
            for c in chars
        )
    return " ".join(chars)


def read_date(value: object, locale: str) -> str:
    """An ISO date or date-time ('2024-03-05', '2024-03-05T14:30') as 'March 5, 2024' (en) or
    '2024年3月5日' (zh)."""
    if isinstance(value, datetime | date):
        day = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            day = datetime.fromisoformat(ascii_digits(value.strip()))
        except ValueError:
            raise ValueError(f"date needs an ISO date like 2024-03-05, got {value!r}") from None
    else:
        raise TypeError(f"date needs an ISO date text, got {type(value).__name__}")
    if locale == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{_EN_MONTHS[day.month - 1]} {day.day}, {day.year}"


def is_decimal_digits(text: str) -> bool:
    """True for a non-empty string of Unicode decimal digits only (not '²' or '五')."""
    return bool(text) and text.isdecimal()


__all__ = [
    "MAX_SPOKEN",
    "ascii_digits",
    "is_decimal_digits",
    "locale_of",
    "read_date",
    "read_digits",
    "read_money",
    "read_number",
    "to_decimal",
    "zh_integer",
]
