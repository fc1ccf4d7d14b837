"""Where campaign calls go: a trunk turns a contact's E.164 number into the target the dialler
dials, in the number format the carrier expects, with its own capacity (calls per second and at
once, shared by every campaign on it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers

NumberFormat = Literal["e164", "digits", "national"]


def format_number(e164: str, fmt: NumberFormat) -> str:
    """``+8613800138000`` as ``+8613800138000`` (e164), ``8613800138000`` (digits) or
    ``13800138000`` (national, without the trunk prefix 0)."""
    if fmt == "e164":
        return e164
    if fmt == "digits":
        return e164.lstrip("+")
    if not e164.startswith("+"):
        return e164  # not a number (a SIP user name): as it is
    return str(phonenumbers.parse(e164).national_number)


@dataclass(frozen=True, slots=True)
class Trunk:
    name: str
    uri: str  # "sip:{number}@carrier.example:5060"
    number_format: NumberFormat = "e164"
    caller_format: NumberFormat = "e164"  # how the caller ID goes in From
    calls_per_s: float | None = None
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        if "{number}" not in self.uri:
            raise ValueError(f"trunk {self.name}: uri needs {{number}}, e.g. "
                             "sip:{number}@10.0.0.5:5060")

    def target(self, e164: str) -> str:
        return self.uri.replace("{number}", format_number(e164, self.number_format))

    def from_user(self, caller: str) -> str:
        return format_number(caller, self.caller_format) if caller.startswith("+") else caller
