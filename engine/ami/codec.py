"""The Asterisk Manager Interface wire format: pure, sans-IO (bytes in, messages out).

AMI runs over TCP. The server first sends one banner line (``Asterisk Call Manager/11.0.0``),
then messages: ``Key: Value`` lines ending in CRLF, one empty line after the last. A message is
an action (client to server, ``Action:`` first), a response (``Response: Success|Error|Goodbye``,
carrying the action's ``ActionID``) or an event (``Event: Name``). Keys may repeat (``Variable``,
``Output``, ``ChanVariable``), so a message keeps its lines in order; lookups are
case-insensitive because Asterisk versions disagree on ``ActionID``/``ActionId``.

Why not panoramisk or asterisk-ami (docs/asterisk.md): this codec is small, has no I/O, and lets
the client drop an event nobody listens to after reading its first line, which is what keeps an
event flood cheap (:func:`event_name`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

AMI_EOL = b"\r\n"
AMI_END = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"
MAX_BANNER_BYTES = 256
# The largest message accepted: a Command's output or a Getvar of a long value stays far below.
MAX_MESSAGE_BYTES = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_()\-.]+$")  # AMI keys: ActionID, Variable, MatchCriteria, ...


class AmiProtocolError(ValueError):
    """The server sent something that is not AMI (a bad banner, an endless message)."""


class AmiMessage:
    """One message: its ``Key: Value`` lines in order (values stripped of the CRLF).

    Lookups are case-insensitive: an index of the keys as sent (Asterisk's canonical case, what
    the code asks for) answers at once, and a lower-cased index is built only the first time a
    key is not found that way. Typed events read a dozen fields of each event they are made
    from, so this is the hot path of an event flood."""

    __slots__ = ("_exact", "_lower", "lines", "raw")

    def __init__(self, lines: tuple[tuple[str, str], ...], raw: bytes | None = None) -> None:
        self.lines = lines
        self.raw = raw  # the bytes it was parsed from (listeners' cheap content checks)
        self._exact = dict(reversed(lines))  # first value per key wins
        self._lower: dict[str, str] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AmiMessage) and other.lines == self.lines

    def __hash__(self) -> int:
        return hash(self.lines)

    def __repr__(self) -> str:
        return f"AmiMessage({self.lines!r})"

    def get(self, key: str, default: str = "") -> str:
        """The first value of ``key`` (case-insensitive), else ``default``."""
        value = self._exact.get(key)
        if value is not None:
            return value
        if self._lower is None:
            self._lower = {}
            for name, v in self.lines:
                self._lower.setdefault(name.lower(), v)
        return self._lower.get(key.lower(), default)

    def getall(self, key: str) -> list[str]:
        k = key.lower()
        return [value for name, value in self.lines if name.lower() == k]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, "\0") != "\0"

    @property
    def event(self) -> str | None:
        """The event name, or None for a response."""
        return self.get("Event") or None

    @property
    def response(self) -> str | None:
        """``Success``, ``Error``, ``Goodbye``, ``Follows``... or None for an event."""
        return self.get("Response") or None

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """First value per key (logs, traces)."""
        return dict(self._exact)

    @classmethod
    def parse(cls, block: bytes) -> AmiMessage:
        """One message without its trailing empty line. ``Key: Value`` lines take the fast
        path; a line without the space (``Key:Value``) or without any ``:`` (old command
        output, kept with an empty key) the careful one."""
        raw = block.decode("utf-8", "replace").split("\r\n")
        pairs = [line.split(": ", 1) for line in raw]
        if all(len(pair) == 2 for pair in pairs):
            return cls(tuple((name, value) for name, value in pairs), block)
        lines: list[tuple[str, str]] = []
        for line in raw:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                lines.append(("", line))
            else:
                lines.append((name.strip(), value[1:] if value.startswith(" ") else value))
        return cls(tuple(lines), block)

    def serialize(self) -> bytes:
        return b"".join(f"{k}: {v}".encode() + AMI_EOL for k, v in self.lines) + AMI_EOL


def event_name(block: bytes) -> str | None:
    """The event name of a raw message if its first line is ``Event: X``, without parsing the
    rest (Asterisk always puts ``Event`` first): the cheap look an event flood gets."""
    if not block.startswith(b"Event:"):
        return None
    end = block.find(AMI_EOL)
    first = block[6:] if end < 0 else block[6:end]
    return first.strip().decode("utf-8", "replace")


def has_action_id(block: bytes) -> bool:
    """Whether a raw message carries an ActionID (event-list entries answering an action do)."""
    return b"\nActionID:" in block or b"\nActionId:" in block


class AmiParser:
    """Splits the byte stream into the banner and raw messages (``bytes`` blocks).

    ``feed`` returns the complete blocks; what is left waits for more bytes. A banner or
    message longer than the limits raises :class:`AmiProtocolError` (the client drops the
    connection: nothing it could do with the rest of the stream would be right)."""

    def __init__(self, *, expect_banner: bool = True,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self.banner: str | None = None if expect_banner else ""
        self.max_message_bytes = max_message_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        if self.banner is None:
            end = self._buf.find(AMI_EOL)
            if end < 0:
                if len(self._buf) > MAX_BANNER_BYTES:
                    raise AmiProtocolError("no AMI banner: the peer is not an Asterisk manager")
                return out
            banner = bytes(self._buf[:end]).decode("utf-8", "replace")
            if not banner.startswith(BANNER_PREFIX):
                raise AmiProtocolError(f"not an AMI banner: {banner[:80]!r}")
            self.banner = banner
            del self._buf[: end + 2]
        start = 0
        buf = self._buf
        while True:
            end = buf.find(AMI_END, start)
            if end < 0:
                break
            if end > start:
                out.append(bytes(buf[start:end]))
            start = end + 4
        if start:
            del buf[:start]
        while buf.startswith(AMI_EOL):  # stray empty lines between messages
            del buf[:2]
        if len(buf) > self.max_message_bytes:
            raise AmiProtocolError(
                f"an AMI message exceeds {self.max_message_bytes} bytes without ending")
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


def serialize_action(action: str, action_id: str,
                     fields: Iterable[tuple[str, str]] = ()) -> bytes:
    """``Action: X`` + ``ActionID`` + the fields, in order (repeat a key to send it twice,
    e.g. several ``Variable`` lines). A CR or LF in a key or value would let a value (a caller
    ID from a spreadsheet, a transfer target from a flow) inject headers or whole actions into
    the session: it is refused with a :class:`ValueError` naming the field."""
    lines: list[tuple[str, str]] = [("Action", action), ("ActionID", action_id)]
    lines.extend((str(k), str(v)) for k, v in fields)
    for key, value in lines:
        if not _KEY.match(key):
            raise ValueError(f"AMI field name {key!r} is not a valid key")
        if "\r" in value or "\n" in value:
            raise ValueError(f"AMI field {key}: a value may not contain CR or LF")
    return AmiMessage(tuple(lines)).serialize()


def iter_messages(blocks: Iterable[bytes]) -> Iterator[AmiMessage]:
    """Parse raw blocks (tests, transcripts)."""
    for block in blocks:
        yield AmiMessage.parse(block)
