"""Text normalisation for matching what a recogniser wrote against what a grammar says.

Recognisers write "10", "Ten.", "十" or "拾"; grammars say "ten" and "十". Both sides go through the
same normalisation so that matching compares like with like:

* lower case, punctuation dropped, Unicode words kept (Korean, Chinese);
* Chinese: traditional -> simplified (OpenCC t2s, whisper often writes traditional), and one
  token per Han character (Chinese is written without spaces; a grammar phrase "查询余额" and a
  hypothesis "查询一下余额" are compared character by character);
* phone-digit synonyms folded: 幺 -> 一, 两 -> 二, 〇 -> 零 (callers read numbers with 幺 and 两);
* numerals spelt out. A numeral has two readings: "10" is "ten" as a quantity and "one zero"
  read digit by digit (card numbers, "press 1 0"); :func:`token_variants` gives both so the
  grammar decides which one fits.

:func:`digits_from_speech` turns spoken digits ("one two three", "幺二三", "123") into "123" for
nodes that collect numbers by voice.
"""

from __future__ import annotations

import functools
import itertools
import re

EN_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
EN_TENS = ("_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ZH_DIGITS = "零一二三四五六七八九"
ZH_FOLD = str.maketrans({"幺": "一", "两": "二", "〇": "零", "壹": "一", "贰": "二", "叁": "三",
                         "肆": "四", "伍": "五", "陆": "六", "柒": "七", "捌": "八", "玖": "九",
                         "拾": "十"})
MAX_NUMERAL_VARIANTS = 4  # readings tried per text (numerals x readings grows fast)

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_HAN}]|\d+(?:\.\d+)?|[^\W\d_]+(?:'[^\W\d_]+)*", re.UNICODE)
_HAN_RE = re.compile(rf"[{_HAN}]")


@functools.lru_cache(maxsize=1)
def _t2s() -> object | None:
    try:
        import opencc  # noqa: PLC0415 - optional: only Chinese text needs it
    except ImportError:
        return None
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (identity when OpenCC is missing or no Han text)."""
    if not _HAN_RE.search(text):
        return text
    cc = _t2s()
    return cc.convert(text) if cc is not None else text  # type: ignore[attr-defined]


def has_han(text: str) -> bool:
    return bool(_HAN_RE.search(text))


def en_cardinal(n: int) -> list[str]:
    """0..999999 as English words ("110" -> one hundred ten); larger: digit by digit."""
    if n < 20:
        return [EN_UNITS[n]]
    if n < 100:
        tens, unit = divmod(n, 10)
        return [EN_TENS[tens]] + ([EN_UNITS[unit]] if unit else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [EN_UNITS[hundreds], "hundred"] + (en_cardinal(rest) if rest else [])
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        return en_cardinal(thousands) + ["thousand"] + (en_cardinal(rest) if rest else [])
    return [EN_UNITS[int(d)] for d in str(n)]


def zh_cardinal(n: int) -> str:
    """0..99999999 in Chinese characters (10 -> 十, 105 -> 一百零五, 2000 -> 二千)."""
    if n == 0:
        return "零"
    if n >= 100_000_000:
        return "".join(ZH_DIGITS[int(d)] for d in str(n))
    if n >= 10_000:
        high, low = divmod(n, 10_000)
        rest = zh_cardinal(low) if low else ""
        return zh_cardinal(high) + "万" + ("零" + rest if low and low < 1000 else rest)
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            if zero:
                out += "零"
                zero = False
            out += ("" if (unit == "十" and d == 1 and not out) else ZH_DIGITS[d]) + unit
        elif out:
            zero = True
    return out


def _numeral_readings(num: str, chinese: bool) -> list[list[str]]:
    """Token readings of one numeral: quantity, and digit by digit when that differs."""
    if "." in num:
        whole, frac = num.split(".", 1)
        head = _numeral_readings(whole, chinese)[0]
        point = ["点"] if chinese else ["point"]
        digits = [ZH_DIGITS[int(d)] if chinese else EN_UNITS[int(d)] for d in frac]
        return [head + point + digits]
    by_digit = [ZH_DIGITS[int(d)] if chinese else EN_UNITS[int(d)] for d in num]
    if len(num) > 1 and num.startswith("0"):
        return [by_digit]
    value = int(num)
    quantity = list(zh_cardinal(value)) if chinese else en_cardinal(value)
    return [quantity] if quantity == by_digit else [quantity, by_digit]


def tokens(text: str) -> list[str]:
    """Tokens with numerals left as they are (one reading: see :func:`token_variants`)."""
    text = to_simplified(text).lower().translate(ZH_FOLD)
    return _TOKEN.findall(text)


def token_variants(text: str, chinese: bool | None = None) -> list[tuple[str, ...]]:
    """Every reading of ``text`` as tokens (at most ``MAX_NUMERAL_VARIANTS``).

    ``chinese`` chooses how numerals are spelt; default: Chinese when the text has Han characters.
    """
    raw = tokens(text)
    zh = has_han(text) if chinese is None else chinese
    choices: list[list[list[str]]] = []
    for t in raw:
        if t[0].isdigit():
            choices.append(_numeral_readings(t, zh))
        else:
            choices.append([[t]])
    variants: list[tuple[str, ...]] = []
    for combo in itertools.islice(itertools.product(*choices), MAX_NUMERAL_VARIANTS):
        flat = tuple(tok for part in combo for tok in part)
        if flat not in variants:
            variants.append(flat)
    # the all-digit-by-digit reading matters most for number grammars: make sure it is tried
    if len(variants) == MAX_NUMERAL_VARIANTS:
        last = tuple(tok for opts in choices for tok in opts[-1])
        if last not in variants:
            variants[-1] = last
    return variants or [()]


def normalise(text: str) -> str:
    """One canonical string (first reading), tokens joined by spaces: for display and keys."""
    return " ".join(token_variants(text)[0])


_EN_DIGIT = {w: str(i) for i, w in enumerate(EN_UNITS[:10])} | {"oh": "0", "o": "0"}
_ZH_DIGIT = {c: str(i) for i, c in enumerate(ZH_DIGITS)}


def digits_from_speech(text: str) -> str:
    """Spoken digits as a digit string: "one two three" / "幺二三" / "1 2 3" -> "123".

    Words that are not digits (fillers, "please") are skipped; a numeral keeps its digits.
    "double five" -> "55" and "双五"-style doubling are not handled (rare on Chinese lines).
    """
    out: list[str] = []
    for t in tokens(text):
        if t.isdigit():
            out.append(t)
        elif t in _EN_DIGIT:
            out.append(_EN_DIGIT[t])
        elif t in _ZH_DIGIT:
            out.append(_ZH_DIGIT[t])
    return "".join(out)
