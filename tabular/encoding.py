"""Which encoding a text file is in, and its lines decoded one block at a time.

What users upload: Excel on Chinese Windows saves "CSV" as GBK (we decode GB18030, its superset),
"CSV UTF-8" with a BOM, "Unicode text" as UTF-16 LE with a BOM and tabs; Notepad and WPS save
UTF-8 without a BOM; Taiwan and Hong Kong offices send Big5. The order of checks: a BOM; the
NUL-byte pattern of BOM-less UTF-16; strict UTF-8; then, when the bytes decode as GB18030 or
Big5, charset-normalizer chooses between those two only (on short samples it otherwise picks
Korean cp949 for Chinese text); else charset-normalizer on its own.

A file that is plain ASCII at the start stays undecided until the first non-ASCII block, so a
GBK file whose Chinese notes start at row 50,000 is not read as UTF-8. A line that does not
decode is reported for that line (with a replacement character in its text); the rest reads on.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from charset_normalizer import from_bytes

BLOCK_BYTES = 1 << 20  # decode this much at a time: fast C decoding, bounded memory
SAMPLE_BYTES = 256 * 1024  # what charset-normalizer looks at
PENDING = "ascii"  # nothing but ASCII seen so far: the real encoding is still open
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
)
_CHINESE = ("gb18030", "big5")
_PREFERRED = ("gb18030", "big5", "cp1252")  # on a tie (short samples): mainland users first
UTF8_MAJORITY = 3  # UTF-8 when valid non-ASCII lines outnumber bad ones this many times
_NAMES = {"utf_8": "utf-8", "gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030",
          "big5hkscs": "big5", "cp950": "big5", "ascii": "utf-8"}


@dataclass(frozen=True, slots=True)
class Encoding:
    """``codec`` decodes the bytes after the BOM; ``name`` is what the user is told."""

    codec: str
    name: str
    bom: int = 0  # bytes to skip

    @property
    def wide(self) -> bool:
        return self.codec.startswith(("utf-16", "utf-32"))


def _utf16_without_bom(sample: bytes) -> str | None:
    even = sample[0:2000:2]
    odd = sample[1:2000:2]
    if len(even) < 4:
        return None
    if odd.count(0) > 0.6 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _valid_utf8(sample: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _strictly(sample: bytes, codec: str) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def guess(sample: bytes) -> Encoding:
    """The encoding of a file that starts with ``sample`` (may be ``PENDING`` for pure ASCII)."""
    for bom, codec, name in _BOMS:
        if sample.startswith(bom):
            return Encoding(codec, name, len(bom))
    wide = _utf16_without_bom(sample)
    if wide:
        return Encoding(wide, wide)
    if sample.isascii():
        return Encoding(PENDING, PENDING)
    return guess_non_ascii(sample)


def _mostly_utf8(sample: bytes) -> bool:
    """Valid UTF-8, or UTF-8 with a few bad lines (they are reported one by one later): most
    non-ASCII lines decode. Chinese GBK bytes almost never form valid UTF-8 by chance."""
    if _valid_utf8(sample):
        return True
    good = bad = 0
    for line in sample.split(b"\n")[:-1] or [sample]:
        if line.isascii():
            continue
        if _strictly(line, "utf-8"):
            good += 1
        else:
            bad += 1
    return good >= UTF8_MAJORITY * max(bad, 1)


def guess_non_ascii(sample: bytes) -> Encoding:
    """A block with non-ASCII bytes and no BOM: UTF-8, a Chinese encoding, or whatever
    charset-normalizer makes of it (cp1252 for a Western European export, say)."""
    if _mostly_utf8(sample):
        return Encoding("utf-8", "utf-8")
    sample = sample[:SAMPLE_BYTES]
    candidates = [c for c in (*_CHINESE, "cp1252") if _strictly(sample, c)]
    if len(candidates) == 1:
        return Encoding(candidates[0], candidates[0])
    results = list(from_bytes(sample, cp_isolation=candidates or None))
    if not results:  # nothing decodes cleanly: GB18030 is the likeliest for our users
        return Encoding("gb18030", "gb18030")
    preference = {name: i for i, name in enumerate(_PREFERRED)}
    best = min(results, key=lambda m: (round(m.chaos, 3),
                                       preference.get(m.encoding, len(preference))))
    name = _NAMES.get(best.encoding, best.encoding)
    return Encoding(name, name)


class LineDecoder:
    """(line with its ending, problem or None), read ``BLOCK_BYTES`` at a time.

    Byte encodings are split at ``\\n`` before decoding (no GB18030, Big5 or UTF-8 sequence
    contains that byte), so one bad line costs one line; UTF-16/32 go through an incremental
    decoder that replaces what it cannot decode. ``encoding`` moves from ``PENDING`` to the real
    one at the first non-ASCII block.
    """

    def __init__(self, stream: BinaryIO, enc: Encoding) -> None:
        self._stream = stream
        self.encoding = enc

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        if self.encoding.wide:
            yield from _wide_lines(self._stream, self.encoding)
            return
        carry = b""
        while True:
            block = self._stream.read(BLOCK_BYTES)
            data = carry + block
            if not block:
                if data:
                    yield from self._block(data)
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            yield from self._block(data[:cut])

    def _block(self, body: bytes) -> Iterator[tuple[str, str | None]]:
        if self.encoding.codec == PENDING and not body.isascii():
            self.encoding = guess_non_ascii(body)
        return _decode_block(body, self.encoding)


def _decode_block(body: bytes, enc: Encoding) -> Iterator[tuple[str, str | None]]:
    codec = "utf-8" if enc.codec == PENDING else enc.codec
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        for raw in _split_bytes(body):
            try:
                yield raw.decode(codec), None
            except UnicodeDecodeError as e:
                bad = raw[e.start : e.start + 4].hex(" ")
                yield (raw.decode(codec, errors="replace"),
                       f"not valid {enc.name.upper()} text (bytes {bad} at column {e.start + 1})")
        return
    yield from ((line, None) for line in _split(text))


def _split(text: str) -> Iterator[str]:
    """Lines ending in ``\\n`` only: ``str.splitlines`` would also split at U+2028, \\x1c ...
    which are data to a CSV reader."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _split_bytes(body: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end + 1
        yield body[start:end]
        start = end


def _wide_lines(stream: BinaryIO, enc: Encoding) -> Iterator[tuple[str, str | None]]:
    decoder = codecs.getincrementaldecoder(enc.codec)(errors="replace")
    carry = ""
    while True:
        block = stream.read(BLOCK_BYTES)
        text = carry + decoder.decode(block, final=not block)
        if not block:
            for line in _split(text):
                yield line, _wide_problem(line, enc)
            return
        cut = text.rfind("\n") + 1
        carry = text[cut:]
        for line in _split(text[:cut]):
            yield line, _wide_problem(line, enc)


def _wide_problem(line: str, enc: Encoding) -> str | None:
    return f"not valid {enc.name.upper()} text" if "\ufffd" in line else None
