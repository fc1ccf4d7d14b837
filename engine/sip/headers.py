"""SIP header container and the low-level splitting helpers shared by the SIP codecs.

Sans-IO: nothing here touches sockets or clocks. Header values are kept as the exact text that
arrived (after unfolding), so a message we only relay or answer serializes byte-for-byte the way
it came in; structured views (``NameAddr``, ``Via`` ...) are parsed on demand by the message
layer. Names are normalised to one canonical spelling (compact forms expanded, RFC 3261 §7.3.3)
so lookups are a dict hit, not a case-insensitive scan over aliases.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.sip.grammar import split_commas

__all__ = ["CANONICAL_NAMES", "MULTI_VALUE_HEADERS", "Headers", "canonical_name"]


_CANONICAL = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event", "Expires", "History-Info",
    "Identity", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route",
    "Refer-To", "Referred-By", "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition",
    "Require", "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires",
    "Subject", "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent",
    "Via", "Warning", "WWW-Authenticate",
]

#: lower-case name (long or compact) -> canonical spelling
CANONICAL_NAMES: dict[str, str] = {n.lower(): n for n in _CANONICAL}
CANONICAL_NAMES.update({
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
    "r": "Refer-To", "o": "Event", "u": "Allow-Events", "b": "Referred-By", "x": "Session-Expires",
    "y": "Identity", "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition",
    "from": "From",
})

#: headers whose grammar is a comma-separated list (RFC 3261 §7.3.1); the auth headers and Date
#: are deliberately absent: their values contain commas that are not list separators.
MULTI_VALUE_HEADERS: frozenset[str] = frozenset({
    "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require", "Proxy-Require",
    "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Allow-Events",
    "Content-Encoding", "Content-Language", "Path", "Service-Route", "P-Asserted-Identity",
    "P-Preferred-Identity", "In-Reply-To", "Warning", "Call-Info", "Alert-Info", "Error-Info",
    "History-Info", "Diversion", "Accept-Contact", "Reject-Contact", "Privacy",
})


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name; unknown names are returned unchanged."""
    return CANONICAL_NAMES.get(name.lower(), name)


class Headers:
    """Ordered, case-insensitive SIP headers.

    Stored as a list of ``(canonical_name, value)``; a typical message has ~12 headers, where a
    linear scan beats maintaining an index on every mutation.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = (
            [(canonical_name(n), v) for n, v in items] if items else []
        )

    @classmethod
    def _from_canonical(cls, items: list[tuple[str, str]]) -> Headers:
        """Adopt an already-normalised list without copying (parser fast path)."""
        h = cls.__new__(cls)
        h._items = items
        return h

    def get(self, name: str) -> str | None:
        """First value of ``name`` (the whole header line value), or None."""
        key = CANONICAL_NAMES.get(name.lower())
        if key is not None:
            for n, v in self._items:
                if n == key:
                    return v
            return None
        lower = name.lower()
        for n, v in self._items:
            if n.lower() == lower:
                return v
        return None

    def get_raw_all(self, name: str) -> list[str]:
        """Every header line value of ``name``, without splitting comma lists."""
        key = CANONICAL_NAMES.get(name.lower())
        if key is not None:
            return [v for n, v in self._items if n == key]
        lower = name.lower()
        return [v for n, v in self._items if n.lower() == lower]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; list-valued headers are split into their elements."""
        raw = self.get_raw_all(name)
        if canonical_name(name) not in MULTI_VALUE_HEADERS:
            return raw
        out: list[str] = []
        for v in raw:
            out.extend(split_commas(v))
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one, at the position of the first (or at the end)."""
        key = canonical_name(name)
        lower = key.lower()
        new: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() == lower:
                if not placed:
                    new.append((key, value))
                    placed = True
            else:
                new.append((n, v))
        if not placed:
            new.append((key, value))
        self._items = new

    def add(self, name: str, value: str) -> None:
        """Append a header line (after any existing ones)."""
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a header line before every other (a proxy adding its Via)."""
        self._items.insert(0, (canonical_name(name), value))

    def remove(self, name: str) -> None:
        """Remove every ``name`` header; absent is not an error."""
        lower = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != lower]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        return Headers._from_canonical(list(self._items))
