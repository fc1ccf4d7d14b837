"""Phone numbers: one canonical form (E.164) and a compact integer form for big lists.

``138 0013 8000``, ``+86 13800138000`` and ``008613800138000`` must be one number or a blacklist
leaks; ``phonenumbers`` does the parsing with a configurable default region. E.164 digits fit in
50 bits (at most 15 digits, the country code never starts with 0), so a number is also a uint64,
which is what lets ten million of them sit in 80 MB of numpy array.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as pn_timezone

MAX_E164_DIGITS = 15


class InvalidNumber(ValueError):
    """A number that cannot be dialled; ``reason`` says why in words an operator understands."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"number {raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "local number without area code",
}


def normalize(raw: str, region: str = "CN") -> str:
    """``raw`` as E.164 (``+8613800138000``) or :class:`InvalidNumber` with the reason."""
    text = raw.strip()
    if not text:
        raise InvalidNumber(raw, "empty")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as e:
        raise InvalidNumber(raw, str(e).split(") ", 1)[-1]) from e
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible not in (phonenumbers.ValidationResult.IS_POSSIBLE,):
        raise InvalidNumber(raw, _REASONS.get(possible, "not a possible number"))
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(raw, "not a valid number in its numbering plan")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_prefix(raw: str) -> str:
    """A prefix for block entries: international digits, ``+86168`` or ``0086168`` -> ``86168``."""
    text = raw.strip().replace(" ", "").replace("-", "")
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not text.isdigit() or not 1 <= len(text) <= MAX_E164_DIGITS or text[0] == "0":
        raise InvalidNumber(raw, "a prefix is international digits such as +86168")
    return text


def to_int(e164: str) -> int:
    return int(e164.lstrip("+"))


def to_e164(value: int) -> str:
    return f"+{value}"


def region_of(e164: str) -> str | None:
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164))


def timezone_for(e164: str, default: tzinfo) -> tzinfo:
    """The callee's zone when the number pins one (all of China is one), else ``default``."""
    zones = pn_timezone.time_zones_for_number(phonenumbers.parse(e164))
    if len(zones) == 1 and zones[0] != "Etc/Unknown":
        return ZoneInfo(zones[0])
    return default
