"""SIP messages: sans-IO parse/serialize for datagrams and streams (RFC 3261 §7, §18.3, §20).

``parse_message`` turns one datagram into a :class:`SipRequest` or :class:`SipResponse`;
:class:`StreamFramer` cuts a TCP/TLS byte stream into message-sized chunks for it. Header values
stay as received (unfolded) and the structured views (``from_``, ``vias`` ...) are parsed on first
access and cached against the raw text, so relaying or answering costs little more than a split.
Every failure is a :class:`SipParseError` carrying the status a UAS should answer with.
"""

from __future__ import annotations

import re
import secrets

from engine.sip.grammar import SipParseError, is_digits, is_token, split_commas
from engine.sip.headers import CANONICAL_NAMES, Headers
from engine.sip.uri import NameAddr, SipUri, Via

__all__ = [
    "REASON_PHRASES",
    "Headers",
    "NameAddr",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "StreamFramer",
    "Via",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
]

MAX_MESSAGE_BYTES = 65535
BRANCH_MAGIC = "z9hG4bK"

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 421: "Extension Required", 422: "Session Interval Too Small",
    423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

# header names as they are usually sent (canonical, or lower case) -> canonical: the parser's
# fast path; any other spelling is checked as a token and looked up in lower case. Exact keys,
# so no non-ASCII name lower-cases its way in ("\u212a".lower() is "k", Supported's short form)
_EXACT_NAMES: dict[str, str] = {**CANONICAL_NAMES, **{v: v for v in CANONICAL_NAMES.values()}}
_SINGLETON_HEADERS = frozenset({"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length"})
_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.IGNORECASE)
_REASON_OK = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")


class SipMessage:
    """What requests and responses share: headers, body and cached structured views."""

    __slots__ = ("_cache", "body", "headers", "version")

    def __init__(self, headers: Headers | None, body: bytes, version: str) -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version
        self._cache: dict[str, tuple[object, object]] = {}

    def _single(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header", reason=f"Bad Request - Missing {name}")
        return value

    @property
    def call_id(self) -> str:
        value = self._single("Call-ID").strip()
        if not value or any(c in value for c in " \t"):
            raise SipParseError(f"invalid Call-ID {value!r}", reason="Bad Request - Bad Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self._single("CSeq")
        hit = self._cache.get("CSeq")
        if hit is not None and hit[0] == raw:
            return hit[1]  # type: ignore[return-value]
        parts = raw.split()
        if len(parts) != 2 or not is_digits(parts[0]):
            raise SipParseError(f"invalid CSeq {raw!r}", reason="Bad Request - Bad CSeq")
        number = int(parts[0])
        if number >= 2**31:
            raise SipParseError(f"CSeq number {number} >= 2**31", reason="Bad Request - Bad CSeq")
        if not is_token(parts[1]):
            raise SipParseError(f"invalid CSeq method {parts[1]!r}",
                                reason="Bad Request - Bad CSeq")
        value = (number, parts[1])
        self._cache["CSeq"] = (raw, value)
        return value

    def _name_addr(self, name: str) -> NameAddr:
        raw = self._single(name)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == raw:
            return hit[1]  # type: ignore[return-value]
        try:
            value = NameAddr.parse(raw)
        except SipParseError as exc:
            raise SipParseError(f"invalid {name} header: {exc}",
                                reason=f"Bad Request - Bad {name}") from exc
        self._cache[name] = (raw, value)
        return value

    @property
    def from_(self) -> NameAddr:
        """The From header; the returned object is cached: build a new one to change it."""
        return self._name_addr("From")

    @property
    def to(self) -> NameAddr:
        return self._name_addr("To")

    @property
    def vias(self) -> list[Via]:
        """All Via values, topmost first (header lines and comma lists flattened)."""
        raw = self.headers.get_raw_all("Via")
        key = tuple(raw)
        hit = self._cache.get("Via")
        if hit is not None and hit[0] == key:
            return list(hit[1])  # type: ignore[call-overload]
        try:
            value = [Via.parse(v) for line in raw for v in split_commas(line)]
        except SipParseError as exc:
            raise SipParseError(f"invalid Via header: {exc}",
                                reason="Bad Request - Bad Via") from exc
        self._cache["Via"] = (key, value)
        return list(value)

    @property
    def contact(self) -> list[NameAddr]:
        """Contact values; empty when absent or ``*`` (see :attr:`contact_is_wildcard`)."""
        out: list[NameAddr] = []
        for v in self.headers.get_all("Contact"):
            if v == "*":
                continue
            try:
                out.append(NameAddr.parse(v))
            except SipParseError as exc:
                raise SipParseError(f"invalid Contact header: {exc}",
                                    reason="Bad Request - Bad Contact") from exc
        return out

    @property
    def contact_is_wildcard(self) -> bool:
        """``Contact: *`` (REGISTER removing every binding, RFC 3261 §10.2.2)."""
        return self.headers.get_all("Contact") == ["*"]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower() or None

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Canonical wire form; Content-Length always equals ``len(body)``."""
        lines = [self._start_line()]
        length = str(len(self.body))
        placed = False
        for name, value in self.headers:
            if name == "Content-Length":
                if not placed:
                    lines.append(f"Content-Length: {length}")
                    placed = True
                continue
            lines.append(f"{name}: {value}")
        if not placed:
            lines.append(f"Content-Length: {length}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


class SipRequest(SipMessage):
    """A SIP request; ``method`` is any token (unknown methods are not parse errors)."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: SipUri,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.method = method
        self.uri = uri

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SipRequest)
            and (self.method, str(self.uri), self.version, self.headers, self.body)
            == (other.method, str(other.uri), other.version, other.headers, other.body)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri}>"


class SipResponse(SipMessage):
    """A SIP response."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str = "",
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.status = status
        self.reason = reason

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SipResponse)
            and (self.status, self.reason, self.version, self.headers, self.body)
            == (other.status, other.reason, other.version, other.headers, other.body)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SipResponse {self.status} {self.reason}>"


def _check_version(text: str, what: str) -> str:
    m = _VERSION_RE.fullmatch(text)
    if m is None:
        raise SipParseError(f"invalid SIP version {text!r} in {what}")
    if (m.group(1), m.group(2)) != ("2", "0"):
        raise SipParseError(f"unsupported SIP version {text!r}", status=505,
                            reason="Version Not Supported")
    return "SIP/2.0"


def _split_head(data: bytes) -> tuple[str, bytes]:
    """Split the header section (decoded) from the body; tolerate bare-LF senders."""
    idx = data.find(b"\r\n\r\n")
    if idx >= 0:
        head, body = data[:idx], data[idx + 4 :]
    else:
        idx = data.find(b"\n\n")
        if idx >= 0:
            head, body = data[:idx], data[idx + 2 :]
        elif data.endswith(b"\n"):
            head, body = data.rstrip(b"\r\n"), b""
        else:
            raise SipParseError("missing blank line after headers")
    return head.decode("utf-8", "surrogateescape"), body


def _parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    """Unfold continuation lines and split ``name: value`` (RFC 3261 §7.3.1)."""
    items: list[tuple[str, str]] = []
    canon, exact = CANONICAL_NAMES, _EXACT_NAMES
    for line in lines:
        if not line:
            raise SipParseError("empty line inside header section")
        if line[0] in " \t":
            if not items:
                raise SipParseError("continuation line before first header")
            name, value = items[-1]
            cont = line.strip(" \t")
            items[-1] = (name, f"{value} {cont}" if value else cont)
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line without ':': {line[:40]!r}")
        name = name.rstrip(" \t")
        known = exact.get(name)  # a known name as sent: a token, no regex or lower() for it
        if known is None:
            if not is_token(name):
                raise SipParseError(f"invalid header name {name[:40]!r}")
            known = canon.get(name.lower(), name)
        items.append((known, value.strip(" \t\r")))
    return items


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_BYTES) -> SipRequest | SipResponse:
    """Parse one datagram's worth of SIP; raise :class:`SipParseError` on anything malformed."""
    if len(data) > max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds {max_size}", status=413)
    data = data.lstrip(b"\r\n")  # keep-alive CRLFs before a message (RFC 5626 §3.5.1)
    if not data:
        raise SipParseError("empty message")
    text, body = _split_head(data)
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0]
    items = _parse_headers(lines[1:])
    headers = Headers._from_canonical(items)
    msg: SipRequest | SipResponse
    if start.startswith(("SIP/", "sip/")):
        parts = start.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError(f"invalid status line {start[:60]!r}")
        version = _check_version(parts[0], "status line")
        code = parts[1]
        if len(code) != 3 or not is_digits(code) or code[0] == "0":
            raise SipParseError(f"invalid status code {code!r}")
        reason = parts[2] if len(parts) == 3 else ""
        if not _REASON_OK.fullmatch(reason):
            raise SipParseError("control character in reason phrase")
        msg = SipResponse(int(code), reason, headers, body, version)
    else:
        parts = start.split(" ")
        if len(parts) != 3:
            raise SipParseError(f"invalid request line {start[:60]!r}")
        method, uri_text, version_text = parts
        if not is_token(method):
            raise SipParseError(f"invalid method {method[:20]!r}")
        uri: SipUri | None = None
        try:
            uri = SipUri.parse(uri_text)
            _check_version(version_text, "request line")
        except SipParseError as exc:
            # a 416/400/505 still needs Via/From/To...: hand back the request (with a placeholder
            # URI, host "invalid" per RFC 6761, when the Request-URI itself was the problem)
            stub = SipRequest(method, uri or SipUri(host="invalid"), headers, body)
            exc.partial = _partial(stub)
            raise
        msg = SipRequest(method, uri, headers, body, "SIP/2.0")
    try:
        _validate(msg, items)
    except SipParseError as exc:
        if isinstance(msg, SipRequest) and exc.partial is None:
            exc.partial = _partial(msg)
        raise
    return msg


def _partial(msg: SipRequest) -> SipRequest | None:
    """The request if a response can be built from it (§8.2.6 needs Via/From/To/Call-ID/CSeq)."""
    try:
        msg.call_id, msg.cseq, msg.from_, msg.to  # noqa: B018 - parse for validity
        if not msg.vias:
            return None
    except SipParseError:
        return None
    return msg


def _is_utf8(text: str) -> bool:
    """False when ``text`` carries bytes the UTF-8 decoder could not read (surrogateescape)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _validate(msg: SipRequest | SipResponse, items: list[tuple[str, str]]) -> None:
    seen: dict[str, int] = {}
    for name, _ in items:
        if name in _SINGLETON_HEADERS:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                raise SipParseError(f"more than one {name} header",
                                    reason=f"Bad Request - Multiple {name}")
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in seen and msg.headers.get(name) is None:
            raise SipParseError(f"missing {name} header", reason=f"Bad Request - Missing {name}")
    _, cseq_method = msg.cseq
    msg.call_id  # noqa: B018 - validates
    msg.from_  # noqa: B018
    msg.to  # noqa: B018
    if not msg.vias:
        raise SipParseError("empty Via header", reason="Bad Request - Missing Via")
    if isinstance(msg, SipRequest) and cseq_method != msg.method:
        raise SipParseError(
            f"CSeq method {cseq_method!r} does not match request method {msg.method!r}",
            reason="Bad Request - CSeq Method Mismatch",
        )
    for name, value in items:
        if not _is_utf8(value):
            # RFC 3261 §7.3.1 / RFC 3629: header text is UTF-8. Bytes that are not would reach
            # records and logs as lone surrogates; the request is refused here instead.
            raise SipParseError(f"{name} header is not valid UTF-8",
                                reason="Bad Request - Invalid UTF-8")
    mf = msg.headers.get("Max-Forwards")
    if mf is not None and (not is_digits(mf) or int(mf) > 255):
        raise SipParseError(f"invalid Max-Forwards {mf!r}", reason="Bad Request - Bad Max-Forwards")
    cl = msg.headers.get("Content-Length")
    if cl is not None:
        if not is_digits(cl):
            raise SipParseError(f"invalid Content-Length {cl!r}",
                                reason="Bad Request - Bad Content-Length")
        length = int(cl)
        if length > len(msg.body):
            raise SipParseError(
                f"Content-Length larger than body ({length} > {len(msg.body)})",
                reason="Bad Request - Content-Length Mismatch",
            )
        msg.body = msg.body[:length]


_CL_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)\r?$",
                    re.IGNORECASE | re.MULTILINE)
_START_RE = re.compile(rb"(?:SIP/\d+\.\d+ \d{3}(?: |\r|\n|$)|[A-Za-z0-9\-.!%*_+`'~]+ \S+ SIP/)",
                       re.IGNORECASE)


class StreamFramer:
    """Cut a TCP/TLS byte stream into whole SIP messages (RFC 3261 §18.3).

    Content-Length is mandatory on streams: it is the only frame boundary. A ``SipParseError``
    means the stream is unrecoverable and the transport should close the connection.
    """

    __slots__ = ("_buf", "max_size", "pings")

    def __init__(self, max_size: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self.max_size = max_size
        #: CRLFCRLF keep-alive pings seen so far (RFC 5626: answer each with b"\r\n")
        self.pings = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            # keep-alives between messages (RFC 5626 §3.5.1): count CRLFCRLF pings so the
            # transport can answer each with a CRLF pong; skip stray CR/LF (pongs)
            buf = self._buf
            while buf and buf[0] in b"\r\n":
                if buf.startswith(b"\r\n\r\n"):
                    self.pings += 1
                    del buf[:4]
                elif len(buf) < 4 and b"\r\n\r\n".startswith(buf):
                    return out  # maybe the first half of a ping
                else:
                    del buf[:1]
            if not buf:
                return out
            first_eol = self._buf.find(b"\n")
            if first_eol >= 0 and not _START_RE.match(self._buf, 0, first_eol + 1):
                raise SipParseError("stream does not start with a SIP start line")
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > self.max_size:
                    raise SipParseError("header section exceeds size limit", status=413)
                return out
            head = bytes(self._buf[: end + 2])
            lengths = {m.group(1).strip() for m in _CL_RE.finditer(head)}
            if not lengths:
                raise SipParseError("missing Content-Length on stream transport",
                                    reason="Bad Request - Missing Content-Length")
            if len(lengths) > 1:
                raise SipParseError("conflicting Content-Length headers")
            (cl,) = lengths
            if not cl.isdigit():  # bytes: ASCII digits only
                raise SipParseError(f"invalid Content-Length {cl!r}")
            total = end + 4 + int(cl)
            if total > self.max_size:
                raise SipParseError(f"message of {total} bytes exceeds {self.max_size}",
                                    status=413)
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buf)


DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


def make_response(
    request: SipRequest, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> SipResponse:
    """A response copying Via/From/To/Call-ID/CSeq from ``request`` (RFC 3261 §8.2.6), and its
    Record-Route when the response creates a dialog (§12.1.1: a 101-299 to a dialog-creating
    request), so in-dialog requests keep following the proxies that asked to stay in the path.
    """
    copy_rr = 100 < status < 300 and request.method in DIALOG_CREATING
    items: list[tuple[str, str]] = []
    for name, value in request.headers:
        if name == "Via" or name in ("From", "Call-ID", "CSeq") or (
                copy_rr and name == "Record-Route"):
            items.append((name, value))
        elif name == "To":
            tagged = to_tag is not None and request.to.tag is None
            items.append((name, f"{value};tag={to_tag}" if tagged else value))
    items.append(("Content-Length", "0"))
    if reason is None:
        reason = REASON_PHRASES.get(status, "")
    return SipResponse(status, reason, Headers._from_canonical(items))


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie + 64 random bits)."""
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"
