"""SDP (RFC 4566) for audio calls and the offer/answer rules we need (RFC 3264), sans-IO.

The parser keeps every line it does not model (unknown attributes, ``i=``/``u=``/``b=``/``k=``...)
so a description we relay or log is not silently trimmed; ``serialize`` writes lines back in the
RFC 4566 §5 order, so canonical input round-trips byte for byte. Negotiation only picks what the
media layer needs (address, port, payload type, codec, DTMF payload type, packetization,
direction) and raises :class:`SdpNegotiationError` (-> 488) when nothing is common.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.sip.grammar import is_digits

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Connection",
    "MediaDescription",
    "NegotiatedMedia",
    "Origin",
    "SdpNegotiationError",
    "SdpParseError",
    "SessionDescription",
    "build_offer",
    "negotiate_answer",
    "parse_answer",
]

#: RFC 3551 static audio payload types: pt -> (encoding name, clock rate)
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 8: ("PCMA", 8000),
    9: ("G722", 8000), 13: ("CN", 8000), 18: ("G729", 8000),
}
_STATIC_BY_NAME = {name: pt for pt, (name, _) in STATIC_PAYLOAD_TYPES.items()}
TELEPHONE_EVENT_PT = 101
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
            "inactive": "inactive"}
_SESSION_EXTRA_BEFORE_C = "iuep"


class SdpParseError(ValueError):
    """Malformed SDP; the message names the offending line."""


class SdpNegotiationError(ValueError):
    """No acceptable audio stream in an offer/answer: answer 488 Not Acceptable Here."""

    status = 488
    reason = "Not Acceptable Here"


@dataclass(slots=True)
class Origin:
    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.nettype} {self.addrtype} {self.address}")


@dataclass(slots=True)
class Connection:
    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @classmethod
    def parse(cls, value: str, lineno: int) -> Connection:
        parts = value.split()
        if len(parts) != 3 or parts[1] not in ("IP4", "IP6"):
            raise SdpParseError(f"line {lineno}: invalid c= {value!r}")
        return cls(parts[2], parts[1], parts[0])

    @classmethod
    def for_ip(cls, ip: str) -> Connection:
        return cls(ip, "IP6" if ":" in ip else "IP4")

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl`` suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


def _direction(attributes: list[tuple[str, str | None]]) -> str | None:
    for name, value in attributes:
        if name in DIRECTIONS and value is None:
            return name
    return None


def _attr(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i=, k= lines

    def attribute(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return v
        return None

    @property
    def rtpmap(self) -> dict[int, tuple[str, int, int | None]]:
        """pt -> (encoding name, clock rate, channels) from a=rtpmap lines."""
        out: dict[int, tuple[str, int, int | None]] = {}
        for n, v in self.attributes:
            if n != "rtpmap" or v is None:
                continue
            pt_text, _, enc = v.partition(" ")
            bits = enc.strip().split("/")
            if not is_digits(pt_text) or len(bits) < 2 or not is_digits(bits[1]):
                raise SdpParseError(f"invalid a=rtpmap:{v}")
            channels = int(bits[2]) if len(bits) > 2 and is_digits(bits[2]) else None
            out[int(pt_text)] = (bits[0], int(bits[1]), channels)
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for n, v in self.attributes:
            if n == "fmtp" and v:
                pt_text, _, params = v.partition(" ")
                if is_digits(pt_text):
                    out[int(pt_text)] = params.strip()
        return out

    @property
    def ptime(self) -> int | None:
        v = self.attribute("ptime")
        return int(v) if v and is_digits(v.strip()) else None

    @property
    def direction(self) -> str | None:
        """The media-level direction attribute, None when absent."""
        return _direction(self.attributes)

    def codec(self, pt: int, rtpmap: dict[int, tuple[str, int, int | None]] | None = None,
              ) -> tuple[str, int] | None:
        """(name, clock rate) for a payload type: rtpmap first, then the static table.

        ``rtpmap`` lets a loop over formats pass ``self.rtpmap`` once instead of re-parsing it.
        """
        mapped = (self.rtpmap if rtpmap is None else rtpmap).get(pt)
        if mapped is not None:
            return mapped[0], mapped[1]
        return STATIC_PAYLOAD_TYPES.get(pt)

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out = [f"m={self.media} {port} {' '.join([self.proto, *self.formats])}"]
        out += [f"{t}={v}" for t, v in self.extra if t == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        out += [f"{t}={v}" for t, v in self.extra if t != "i"]
        out += [_attr(n, v) for n, v in self.attributes]
        return out


@dataclass(slots=True)
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[str] = field(default_factory=lambda: ["0 0"])
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i u e p r z k lines
    version: int = 0

    @classmethod
    def parse(cls, data: str | bytes) -> SessionDescription:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpParseError(f"SDP is not UTF-8: {exc}") from exc
        sd = cls(timing=[])
        media: MediaDescription | None = None
        seen_v = seen_o = seen_s = False
        for lineno, raw in enumerate(data.replace("\r\n", "\n").split("\n"), 1):
            if not raw:
                continue
            if len(raw) < 2 or raw[1] != "=" or not raw[0].isalpha():
                raise SdpParseError(f"line {lineno}: not <type>=<value>: {raw[:40]!r}")
            kind, value = raw[0], raw[2:]
            if kind == "v":
                if value.strip() != "0":
                    raise SdpParseError(f"line {lineno}: unsupported v={value!r}")
                seen_v = True
            elif kind == "o":
                parts = value.split()
                if len(parts) != 6:
                    raise SdpParseError(f"line {lineno}: o= needs 6 fields: {value!r}")
                sd.origin = Origin(*parts)
                seen_o = True
            elif kind == "s":
                sd.session_name = value
                seen_s = True
            elif kind == "m":
                media = _parse_m(value, lineno)
                sd.media.append(media)
            elif kind == "c":
                conn = Connection.parse(value, lineno)
                if media is None:
                    sd.connection = conn
                else:
                    media.connection = conn
            elif kind == "b":
                (sd.bandwidths if media is None else media.bandwidths).append(value)
            elif kind == "t":
                sd.timing.append(value)
            elif kind == "a":
                name, colon, aval = value.partition(":")
                if not name:
                    raise SdpParseError(f"line {lineno}: empty attribute name")
                (sd.attributes if media is None else media.attributes).append(
                    (name, aval if colon else None))
            else:
                (sd.extra if media is None else media.extra).append((kind, value))
        if not (seen_v and seen_o and seen_s):
            missing = [k for k, s in (("v=", seen_v), ("o=", seen_o), ("s=", seen_s)) if not s]
            raise SdpParseError(f"missing mandatory line(s) {', '.join(missing)}")
        if not sd.timing:
            raise SdpParseError("missing mandatory t= line")
        return sd

    def serialize(self) -> bytes:
        return "".join(line + "\r\n" for line in self.lines()).encode()

    def __str__(self) -> str:
        return self.serialize().decode()

    def lines(self) -> list[str]:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        out += [f"{t}={v}" for t, v in self.extra if t in _SESSION_EXTRA_BEFORE_C]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        for t in self.timing:
            out.append(f"t={t}")
            out += [f"r={v}" for k, v in self.extra if k == "r"]
        out += [f"{t}={v}" for t, v in self.extra if t in "zk"]
        out += [f"{t}={v}" for t, v in self.extra if t not in _SESSION_EXTRA_BEFORE_C + "rzk"]
        out += [_attr(n, v) for n, v in self.attributes]
        for m in self.media:
            out += m.lines()
        return out

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute, None when absent."""
        return _direction(self.attributes)

    def media_direction(self, m: MediaDescription) -> str:
        """Effective direction: media level, else session level, else sendrecv (RFC 4566 §6)."""
        return m.direction or self.direction or "sendrecv"

    def media_connection(self, m: MediaDescription) -> Connection:
        conn = m.connection or self.connection
        if conn is None:
            raise SdpParseError(f"m={m.media} {m.port} has no c= line at media or session level")
        return conn


def _parse_m(value: str, lineno: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpParseError(f"line {lineno}: m= needs media, port, proto: {value!r}")
    port_text, slash, count_text = parts[1].partition("/")
    if not is_digits(port_text) or int(port_text) > 65535 or (
            slash and not is_digits(count_text)):
        raise SdpParseError(f"line {lineno}: invalid m= port {parts[1]!r}")
    return MediaDescription(parts[0], int(port_text), parts[2], parts[3:],
                            int(count_text) if slash else None)


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """What the RTP session needs after offer/answer."""

    remote_ip: str
    remote_port: int
    payload_type: int
    codec: str
    clock_rate: int
    telephone_event_pt: int | None
    ptime: int
    direction: str  # ours: sendrecv / sendonly / recvonly / inactive
    on_hold: bool = False


def _offered_codecs(m: MediaDescription) -> list[str]:
    out = []
    rtpmap = m.rtpmap
    for f in m.formats:
        c = m.codec(int(f), rtpmap) if is_digits(f) else None
        out.append(f"{c[0]}/{c[1]}" if c else f)
    return out


def _telephone_event(m: MediaDescription) -> tuple[int, str | None] | None:
    fmtp = m.fmtp
    for pt, (name, rate, _) in m.rtpmap.items():
        if name.lower() == "telephone-event" and rate == 8000 and str(pt) in m.formats:
            return pt, fmtp.get(pt)
    return None


def _is_hold_address(conn: Connection) -> bool:
    return conn.host in ("0.0.0.0", "::")


def negotiate_answer(
    offer: SessionDescription,
    *,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
    local_ip: str,
    local_port: int,
    session_id: int,
    ptime: int = 20,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer``: accept the first usable audio stream, reject the rest with port 0.

    The codec is the first offered one we support (the offerer's preference order, RFC 3264
    §6.1); other m-lines stay in the answer with port 0 because an answer must mirror them.
    """
    wanted = {name.upper() for name in supported}
    answer = SessionDescription(
        origin=Origin("-", str(session_id), str(session_id), "IN",
                      "IP6" if ":" in local_ip else "IP4", local_ip),
        connection=Connection.for_ip(local_ip),
    )
    chosen: NegotiatedMedia | None = None
    offered_desc: list[str] = []
    for m in offer.media:
        usable = m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP"
        pick: tuple[int, str, int] | None = None
        if usable:
            offered_desc += _offered_codecs(m)
        if usable and chosen is None:
            rtpmap = m.rtpmap
            for f in m.formats:
                c = m.codec(int(f), rtpmap) if is_digits(f) else None
                if c and c[0].upper() in wanted and c[1] == 8000:
                    pick = (int(f), c[0], c[1])
                    break
        if pick is None:
            answer.media.append(MediaDescription(m.media, 0, m.proto, m.formats[:1] or ["0"]))
            continue
        pt, name, rate = pick
        conn = offer.media_connection(m)
        offer_dir = offer.media_direction(m)
        hold = _is_hold_address(conn) or offer_dir in ("sendonly", "inactive")
        direction = _REVERSE[offer_dir]
        if _is_hold_address(conn) and direction == "sendrecv":
            direction = "recvonly"  # RFC 2543 hold: never send to 0.0.0.0 (RFC 3264 §8.4)
        te = _telephone_event(m)
        formats = [str(pt)] + ([str(te[0])] if te else [])
        attrs: list[tuple[str, str | None]] = [("rtpmap", f"{pt} {name}/{rate}")]
        if te:
            attrs.append(("rtpmap", f"{te[0]} telephone-event/8000"))
            attrs.append(("fmtp", f"{te[0]} {te[1] or '0-16'}"))
        attrs += [("ptime", str(ptime)), (direction, None)]
        answer.media.append(MediaDescription("audio", local_port, m.proto, formats,
                                             attributes=attrs))
        chosen = NegotiatedMedia(conn.host, m.port, pt, name, rate, te[0] if te else None,
                                 m.ptime or ptime, direction, hold)
    if chosen is None:
        offered = ", ".join(offered_desc) or "no RTP/AVP audio stream"
        raise SdpNegotiationError(
            f"no common audio codec: offered {offered}; we support {', '.join(supported)}")
    return answer, chosen


def build_offer(  # noqa: PLR0917 - mirrors the documented positional API
    local_ip: str,
    port: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    telephone_event: bool = True,
    ptime: int = 20,
    session_id: int = 0,
    version: int = 0,
    direction: str = "sendrecv",
) -> SessionDescription:
    """An audio offer with static payload types and telephone-event on 101."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    formats: list[str] = []
    attrs: list[tuple[str, str | None]] = []
    for name in codecs:
        pt = _STATIC_BY_NAME.get(name.upper())
        if pt is None:
            raise ValueError(f"codec {name!r} has no static payload type")
        formats.append(str(pt))
        attrs.append(("rtpmap", f"{pt} {STATIC_PAYLOAD_TYPES[pt][0]}/8000"))
    if telephone_event:
        formats.append(str(TELEPHONE_EVENT_PT))
        attrs.append(("rtpmap", f"{TELEPHONE_EVENT_PT} telephone-event/8000"))
        attrs.append(("fmtp", f"{TELEPHONE_EVENT_PT} 0-16"))
    attrs += [("ptime", str(ptime)), (direction, None)]
    return SessionDescription(
        origin=Origin("-", str(session_id), str(version), "IN",
                      "IP6" if ":" in local_ip else "IP4", local_ip),
        connection=Connection.for_ip(local_ip),
        media=[MediaDescription("audio", port, "RTP/AVP", formats, attributes=attrs)],
    )


def parse_answer(offer_we_sent: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """What to send and where after the peer answered our offer (RFC 3264 §7)."""
    ours = next((m for m in offer_we_sent.media if m.media == "audio" and m.port), None)
    if ours is None:
        raise SdpNegotiationError("our offer has no audio stream")
    for m in answer.media:
        if m.media != "audio" or m.port == 0:
            continue
        for f in m.formats:
            if not is_digits(f) or f not in ours.formats:
                continue
            c = m.codec(int(f)) or ours.codec(int(f))
            if c is None or c[0].lower() == "telephone-event":
                continue
            conn = answer.media_connection(m)
            te = _telephone_event(m)
            direction = _REVERSE[answer.media_direction(m)]
            hold = _is_hold_address(conn)
            if hold and direction == "sendrecv":
                direction = "recvonly"
            return NegotiatedMedia(conn.host, m.port, int(f), c[0], c[1],
                                   te[0] if te else None, m.ptime or ours.ptime or 20,
                                   direction, hold or direction in ("recvonly", "inactive"))
    offered = ", ".join(_offered_codecs(ours))
    raise SdpNegotiationError(f"answer accepts none of our codecs ({offered}) or rejects audio")
