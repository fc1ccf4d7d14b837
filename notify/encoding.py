"""SMS text on the wire: GSM 7-bit when every character fits, UCS-2 otherwise, split with UDH.

Why this is its own pure module: the number of parts decides the bill, the per-number limits
and whether a message may be sent at all, so it must be known *before* anything is sent, by
the same code that later cuts the parts. The rules (3GPP TS 23.038 / 23.040):

* GSM 03.38 default alphabet: 160 septets in one message; characters of the extension table
  (``€ [ ] { } \\ ^ ~ |`` and form feed) take two (escape + code). Over SMPP the septets travel
  one per octet (``data_coding`` 0, the SMSC's default alphabet); the SMSC packs them.
* UCS-2 (``data_coding`` 8, UTF-16BE octets): 70 code units in one message. Characters beyond
  the BMP (emoji) are a surrogate pair: two units, never split across parts.
* Longer messages carry a 6-octet concatenation UDH (IEI 0x00: reference, total, sequence):
  153 septets or 67 UCS-2 units per part. An escape pair or a surrogate pair is never cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM_SINGLE_SEPTETS = 160
GSM_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67
MAX_PARTS = 255  # the UDH's part count is one octet
UDH_CONCAT_OCTETS = 6
DATA_CODING_GSM7 = 0x00
DATA_CODING_UCS2 = 0x08
GSM_ESCAPE = 0x1B

# 3GPP TS 23.038 6.2.1: the default alphabet, indexed by septet value.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# 6.2.1.1: the extension table, reached through the escape septet.
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C,
                 "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
_BASIC_CODE = {ch: i for i, ch in enumerate(GSM_BASIC) if ch != "\x1b"}
_BASIC_CHAR = {i: ch for ch, i in _BASIC_CODE.items()}
_EXT_CHAR = {v: k for k, v in GSM_EXTENSION.items()}

Coding = Literal["gsm7", "ucs2"]


class EncodingError(ValueError):
    """Text that cannot be sent: empty, or more parts than a UDH can number."""


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC_CODE or ch in GSM_EXTENSION for ch in text)


def gsm7_encode(text: str) -> bytes:
    """Unpacked septets (one per octet), the form SMPP carries with ``data_coding`` 0."""
    out = bytearray()
    for ch in text:
        if ch in _BASIC_CODE:
            out.append(_BASIC_CODE[ch])
        elif ch in GSM_EXTENSION:
            out += bytes((GSM_ESCAPE, GSM_EXTENSION[ch]))
        else:
            raise EncodingError(f"text: {ch!r} is not in the GSM 7-bit alphabet")
    return bytes(out)


def gsm7_decode(data: bytes) -> str:
    """Unpacked septets back to text (an unknown escape gives a space, per 23.038)."""
    out: list[str] = []
    i = 0
    while i < len(data):
        code = data[i] & 0x7F
        if code == GSM_ESCAPE and i + 1 < len(data):
            out.append(_EXT_CHAR.get(data[i + 1] & 0x7F, " "))
            i += 2
            continue
        out.append(_BASIC_CHAR.get(code, " "))
        i += 1
    return "".join(out)


def _units(ch: str, coding: Coding) -> int:
    if coding == "gsm7":
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def concat_udh(reference: int, total: int, sequence: int) -> bytes:
    """The 6-octet concatenation header: UDHL, IEI 0x00, IEDL 3, ref, total, sequence."""
    if not 0 <= reference <= 0xFF:
        raise EncodingError(f"reference: {reference} does not fit one octet")
    return bytes((0x05, 0x00, 0x03, reference, total, sequence))


def parse_concat_udh(data: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """``((reference, total, sequence) or None, payload)`` of a message whose UDHI bit is set.
    Understands both the 8-bit (IEI 0x00) and 16-bit (IEI 0x08) reference forms."""
    if not data:
        raise EncodingError("udh: empty message")
    udhl = data[0]
    if 1 + udhl > len(data):
        raise EncodingError(f"udh: length {udhl} runs past the message ({len(data)} octets)")
    header, payload = data[1:1 + udhl], data[1 + udhl:]
    pos = 0
    found = None
    while pos + 2 <= len(header):
        iei, iedl = header[pos], header[pos + 1]
        ie = header[pos + 2:pos + 2 + iedl]
        if iei == 0x00 and iedl == 3 and len(ie) == 3:
            found = (ie[0], ie[1], ie[2])
        elif iei == 0x08 and iedl == 4 and len(ie) == 4:
            found = ((ie[0] << 8) | ie[1], ie[2], ie[3])
        pos += 2 + iedl
    return found, payload


@dataclass(frozen=True, slots=True)
class SmsPlan:
    """How a text goes out: its coding and the payload of each part (UDH not included)."""

    text: str
    coding: Coding
    units: int  # septets (GSM) or UTF-16 code units (UCS-2) of the whole text
    texts: tuple[str, ...]  # the text of each part

    @property
    def data_coding(self) -> int:
        return DATA_CODING_GSM7 if self.coding == "gsm7" else DATA_CODING_UCS2

    @property
    def part_count(self) -> int:
        return len(self.texts)

    @property
    def concatenated(self) -> bool:
        return len(self.texts) > 1

    def payloads(self) -> list[bytes]:
        enc = gsm7_encode if self.coding == "gsm7" else _ucs2
        return [enc(t) for t in self.texts]

    def short_messages(self, reference: int) -> list[bytes]:
        """Each part as SMPP's ``short_message``: UDH + payload when concatenated (set the
        UDHI bit, ``esm_class`` 0x40, on each)."""
        payloads = self.payloads()
        if not self.concatenated:
            return payloads
        total = len(payloads)
        return [concat_udh(reference, total, i + 1) + p for i, p in enumerate(payloads)]


def _ucs2(text: str) -> bytes:
    return text.encode("utf-16-be")


def plan(text: str, *, force_ucs2: bool = False) -> SmsPlan:
    """Choose the coding and cut ``text`` into parts; the part count is final."""
    if not text:
        raise EncodingError("text: empty message")
    coding: Coding = "ucs2" if force_ucs2 or not is_gsm7(text) else "gsm7"
    single, per_part = ((GSM_SINGLE_SEPTETS, GSM_PART_SEPTETS) if coding == "gsm7"
                        else (UCS2_SINGLE_UNITS, UCS2_PART_UNITS))
    sizes = [_units(ch, coding) for ch in text]
    total = sum(sizes)
    if total <= single:
        return SmsPlan(text, coding, total, (text,))
    texts: list[str] = []
    start = used = 0
    for i, size in enumerate(sizes):
        if used + size > per_part:  # never cut an escape or surrogate pair
            texts.append(text[start:i])
            start, used = i, 0
        used += size
    texts.append(text[start:])
    if len(texts) > MAX_PARTS:
        raise EncodingError(f"text: {len(texts)} parts, more than the {MAX_PARTS} a UDH allows")
    return SmsPlan(text, coding, total, tuple(texts))


def decode_payload(data_coding: int, payload: bytes) -> str:
    """A received part's text (receipts, replies): UCS-2, GSM septets or Latin-1."""
    if data_coding == DATA_CODING_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == DATA_CODING_GSM7:
        return gsm7_decode(payload)
    return payload.decode("latin-1")
