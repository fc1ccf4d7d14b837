"""SIP/SIPS/tel URIs, name-addr values (From/To/Contact/Route) and Via values.

Pure value types with ``parse(text)`` / ``__str__``. IPv6 hosts are stored *without* brackets
(``host="::1"``) so the transport can hand them to ``sendto`` directly; ``__str__`` puts the
brackets back. Parameter names are lower-cased (they are case-insensitive, RFC 3261 §19.1.4);
values are kept as written (escaped, quotes kept) so re-serialization does not alter them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from engine.sip.grammar import SipParseError, is_digits, is_token, split_params

__all__ = ["NameAddr", "SipUri", "Via"]

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|[A-Za-z0-9]")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")
_URI_BAD_RE = re.compile(r'[ \t\r\n<>"]')  # one C scan instead of a generator over 8 chars
_TEL_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pwPW]+")
_URI_HEADER_SAFE = "!$'()*+-./:?[]_~"
# RFC 3261 §25.1 user = 1*( unreserved / escaped / user-unreserved )
_USER_SAFE = "-_.!~*'()&=+$,;?/"


def _parse_port(text: str, what: str) -> int:
    if not is_digits(text):
        raise SipParseError(f"invalid port {text!r} in {what}")
    port = int(text)
    if port > 65535:
        raise SipParseError(f"port {port} out of range in {what}")
    return port


def _parse_hostport(text: str, what: str) -> tuple[str, int | None]:
    """``host[:port]`` with IPv6 references; returns the bare host."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {what}")
        host = text[1:end]
        if not host or not _IPV6_RE.fullmatch(host) or ":" not in host:
            raise SipParseError(f"invalid IPv6 host {text[: end + 1]!r} in {what}")
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipParseError(f"junk after IPv6 host in {what}")
        return host, _parse_port(rest[1:], what)
    host, colon, port = text.partition(":")
    if not host or not _HOST_RE.fullmatch(host):
        raise SipParseError(f"invalid host {host!r} in {what}")
    return host, (_parse_port(port, what) if colon else None)


def _format_host(host: str, port: int | None) -> str:
    h = f"[{host}]" if ":" in host else host
    return h if port is None else f"{h}:{port}"


@dataclass(slots=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI (RFC 3261 §19.1, RFC 3966)."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; other schemes raise ``SipParseError(status=416)``."""
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme):
            raise SipParseError(f"invalid URI {text!r}: missing or bad scheme")
        scheme = scheme.lower()
        if scheme == "tel":
            return cls._parse_tel(rest, text)
        if scheme not in ("sip", "sips"):
            raise SipParseError(
                f"unsupported URI scheme {scheme!r}", status=416, reason="Unsupported URI Scheme"
            )
        if not rest or _URI_BAD_RE.search(rest) or not rest.isprintable():
            raise SipParseError(f"invalid characters in URI {text!r}")
        user: str | None = None
        password: str | None = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            u, pcolon, pw = userinfo.partition(":")
            if not u:
                raise SipParseError(f"empty user part in URI {text!r}")
            try:
                user = unquote(u, errors="strict")
            except UnicodeDecodeError as exc:
                raise SipParseError(f"bad %-escape in URI user {u!r}") from exc
            password = pw if pcolon else None
        rest, qmark, hdrs = rest.partition("?")
        hostport, semi, ptext = rest.partition(";")
        host, port = _parse_hostport(hostport, "URI")
        params = split_params(ptext, "URI parameters") if semi else {}
        headers: dict[str, str] = {}
        if qmark:
            for item in hdrs.split("&"):
                name, _eq, value = item.partition("=")
                if not name:
                    raise SipParseError(f"empty header name in URI {text!r}")
                headers[name] = value
        return cls(scheme, user, password, host, port, params, headers)

    @classmethod
    def _parse_tel(cls, rest: str, text: str) -> SipUri:
        number, semi, ptext = rest.partition(";")
        if not number or not _TEL_RE.fullmatch(number):
            raise SipParseError(f"invalid tel URI number in {text!r}")
        params = split_params(ptext, "tel URI parameters") if semi else {}
        return cls("tel", None, None, number, None, params, {})

    def __str__(self) -> str:
        if self.scheme == "tel":
            out = f"tel:{self.host}"
        else:
            out = f"{self.scheme}:"
            if self.user is not None:
                out += quote(self.user, safe=_USER_SAFE, errors="surrogateescape")
                if self.password is not None:
                    out += f":{self.password}"
                out += "@"
            out += _format_host(self.host, self.port)
        for k, v in self.params.items():
            out += f";{k}" if v is None else f";{k}={v}"
        if self.headers:
            out += "?" + "&".join(
                f"{k}={quote(unquote(v), safe=_URI_HEADER_SAFE, errors='surrogateescape')}"
                for k, v in self.headers.items()
            )
        return out

    @property
    def transport(self) -> str:
        """``transport`` param upper-cased; defaults UDP for sip: and TLS for sips:."""
        t = self.params.get("transport")
        if t:
            return t.upper()
        return "TLS" if self.scheme == "sips" else "UDP"


def _parse_quoted(text: str, start: int) -> tuple[str, int]:
    """Unescape the quoted-string at ``text[start] == '"'``; return (value, index after)."""
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise SipParseError(f"unterminated quoted display name in {text!r}")


def _quote_display(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(slots=True)
class NameAddr:
    """``"Display" <uri>;params`` as in From, To, Contact, Route (RFC 3261 §20.10)."""

    display_name: str | None = None
    uri: SipUri = field(default_factory=SipUri)
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip(" \t")
        if not text:
            raise SipParseError("empty name-addr")
        display: str | None = None
        if text[0] == '"':
            display, i = _parse_quoted(text, 0)
            text = text[i:].lstrip(" \t")
            if not text.startswith("<"):
                raise SipParseError("quoted display name not followed by <URI>")
        lt = text.find("<")
        if lt >= 0:
            if lt > 0:
                name = " ".join(text[:lt].split())
                if not all(is_token(w) for w in name.split(" ")):
                    raise SipParseError(f"invalid display name {name!r}")
                display = name
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"missing '>' in name-addr {text!r}")
            uri = SipUri.parse(text[lt + 1 : gt])
            rest = text[gt + 1 :].strip(" \t")
            if rest and rest[0] != ";":
                raise SipParseError(f"junk after '>' in name-addr {text!r}")
        else:
            # addr-spec: ';params' after the URI belong to the header, not the URI (§20.10)
            uri_text, _semi, ptext = text.partition(";")
            uri = SipUri.parse(uri_text.strip(" \t"))
            rest = ";" + ptext if _semi else ""
        params = split_params(rest[1:], "header parameters") if rest else {}
        return cls(display, uri, params)

    def __str__(self) -> str:
        out = f"<{self.uri}>"
        if self.display_name is not None:
            out = f"{_quote_display(self.display_name)} {out}"
        for k, v in self.params.items():
            out += f";{k}" if v is None else f";{k}={v}"
        return out

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``tag`` set (the UAS adding its To tag)."""
        return replace(self, params={**self.params, "tag": tag})


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 §20.42, RFC 3581 rport)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        proto, semi, ptext = text.partition(";")
        parts = proto.split("/")
        if len(parts) != 3:
            raise SipParseError(f"invalid Via sent-protocol in {text!r}")
        name, version, tail = (p.strip(" \t") for p in parts)
        if name.upper() != "SIP" or version != "2.0":
            raise SipParseError(f"unsupported Via protocol {name}/{version}")
        tail_parts = tail.split(None, 1)
        if len(tail_parts) != 2:
            raise SipParseError(f"missing Via sent-by in {text!r}")
        transport, sent_by = tail_parts[0].upper(), tail_parts[1].strip()
        if not is_token(transport):
            raise SipParseError(f"invalid Via transport {transport!r}")
        sent_by = "".join(sent_by.split())  # "host : port" is legal LWS
        host, port = _parse_hostport(sent_by, "Via sent-by")
        params = split_params(ptext, "Via parameters") if semi else {}
        return cls(transport, host, port, params)

    def __str__(self) -> str:
        out = f"SIP/2.0/{self.transport} {_format_host(self.host, self.port)}"
        for k, v in self.params.items():
            out += f";{k}" if v is None else f";{k}={v}"
        return out

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The filled-in rport value; None when absent or present without a value."""
        v = self.params.get("rport")
        return int(v) if v and is_digits(v) else None
