"""DTMF carried in SIP INFO bodies (the non-RFC-4733 path some PBXs and trunks still use).

Two de-facto formats exist: ``application/dtmf-relay`` (Cisco style, ``Signal=5\\r\\nDuration=160``)
and ``application/dtmf`` (just the key). Both map to the same ``(digit, duration_ms)`` as RFC 4733
events so the IVR sees one kind of DTMF whatever the peer sends. Pure functions, no I/O.
"""

from __future__ import annotations

from engine.sip.grammar import is_digits

__all__ = [
    "DEFAULT_DURATION_MS",
    "DTMF_DIGITS",
    "DtmfInfoError",
    "build_dtmf_info",
    "parse_dtmf_info",
]

DTMF_DIGITS = "0123456789*#ABCD"
DEFAULT_DURATION_MS = 160
MAX_DURATION_MS = 60_000
# RFC 4733 event codes some senders put in Signal= instead of the character
_EVENT_CODES = {str(i): d for i, d in enumerate(DTMF_DIGITS)}
CONTENT_TYPE_RELAY = "application/dtmf-relay"
CONTENT_TYPE_DTMF = "application/dtmf"


class DtmfInfoError(ValueError):
    """An INFO body that is not a DTMF event we understand; the message names the field."""


def _digit(text: str, field: str, *, allow_code: bool) -> str:
    t = text.strip().upper()
    if len(t) == 1 and t in DTMF_DIGITS:
        return t
    if allow_code and t in _EVENT_CODES and len(t) == 2:
        return _EVENT_CODES[t]
    raise DtmfInfoError(f"invalid DTMF {field} {text.strip()[:20]!r}")


def parse_dtmf_info(content_type: str | None, body: bytes) -> tuple[str, int]:
    """``(digit, duration_ms)`` from an INFO body; duration defaults to 160 ms when absent."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DtmfInfoError("DTMF INFO body is not ASCII") from exc
    if media == CONTENT_TYPE_DTMF:
        return _digit(text, "key", allow_code=True), DEFAULT_DURATION_MS
    if media != CONTENT_TYPE_RELAY:
        raise DtmfInfoError(f"unsupported INFO Content-Type {content_type!r}")
    fields: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, eq, value = line.partition("=")
        if not eq:
            raise DtmfInfoError(f"dtmf-relay line without '=': {line[:40]!r}")
        fields[name.strip().lower()] = value.strip()
    if "signal" not in fields:
        raise DtmfInfoError("dtmf-relay body has no Signal field")
    digit = _digit(fields["signal"], "Signal", allow_code=True)
    duration = DEFAULT_DURATION_MS
    if "duration" in fields:
        d = fields["duration"]
        if not is_digits(d) or not 0 < int(d) <= MAX_DURATION_MS:
            raise DtmfInfoError(f"invalid dtmf-relay Duration {d[:20]!r}")
        duration = int(d)
    return digit, duration


def build_dtmf_info(digit: str, duration_ms: int = DEFAULT_DURATION_MS, *,
                    relay: bool = True) -> tuple[str, bytes]:
    """``(content_type, body)`` for an INFO carrying ``digit``."""
    d = _digit(digit, "digit", allow_code=False)
    if not 0 < duration_ms <= MAX_DURATION_MS:
        raise DtmfInfoError(f"duration_ms {duration_ms} out of range")
    if relay:
        return CONTENT_TYPE_RELAY, f"Signal={d}\r\nDuration={duration_ms}\r\n".encode()
    return CONTENT_TYPE_DTMF, d.encode()
