"""The SIP token grammar and the parse error every SIP codec raises (RFC 3261 §25.1).

The bottom of the SIP codecs: ``headers``, ``uri``, ``message``, ``sdp`` and ``digest`` import
from here and never from each other in a circle. Sans-IO and pure.
"""

from __future__ import annotations

import re

__all__ = ["SipParseError", "is_digits", "is_token", "split_commas", "split_params"]


class SipParseError(ValueError):
    """A SIP message (or a part of one) that cannot be understood.

    ``status``/``reason`` are what a UAS should answer with when an answer is possible;
    ``partial`` is set by the message parser to the request when its start line and the
    Via/From/To/Call-ID/CSeq headers were readable, which is exactly what ``make_response`` needs
    to build that answer (RFC 3261 §8.2.6). It is typed ``object`` here because the grammar sits
    below the message module; readers check ``isinstance(e.partial, SipRequest)``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason if reason is not None else _DEFAULT_REASONS.get(status, "Bad Request")
        self.partial: object | None = None


_DEFAULT_REASONS = {
    400: "Bad Request",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    416: "Unsupported URI Scheme",
    505: "Version Not Supported",
}

def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes (with backslash escapes) and outside ``<...>``."""
    out: list[str] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == sep and not in_angle:
            out.append(text[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError(f"unterminated quoted string in {text!r}")
    out.append(text[start:])
    return out


def split_commas(value: str) -> list[str]:
    """Split a list-valued header into its elements, stripped, empties dropped."""
    plain = '"' not in value and "<" not in value
    parts = value.split(",") if plain else _split(value, ",")
    return [p.strip() for p in parts if p.strip()]


def split_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` (text after the first ';'), names lower-cased.

    Quoted values keep their quotes so serialization round-trips; ``what`` names the field in
    error messages.
    """
    params: dict[str, str | None] = {}
    if not text:
        return params
    parts = text.split(";") if '"' not in text else _split(text, ";")
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise SipParseError(f"empty parameter name in {what}")
        if not is_token(name):
            raise SipParseError(f"invalid parameter name {name!r} in {what}")
        params[name] = value.strip() if eq else None
    return params


_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(text: str) -> bool:
    """RFC 3261 §25.1 token (a regex fullmatch: ~5x faster than a per-character set test)."""
    return _TOKEN_RE.fullmatch(text) is not None


def is_digits(text: str) -> bool:
    """One or more ASCII digits (RFC 5234 DIGIT). ``str.isdigit`` also accepts "²" and "٤",
    which ``int()`` then refuses or reads as another number."""
    return text.isascii() and text.isdigit()

