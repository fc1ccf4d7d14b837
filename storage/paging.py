"""Keyset paging: opaque cursors for "newest first" lists that stay stable while rows arrive.

A cursor holds the sort key of the last row of a page (e.g. ``[invite_at, id]``); the next page
is everything strictly after it. Unlike OFFSET, the cost does not grow with the page number and a
row inserted meanwhile never shifts the pages.
"""

from __future__ import annotations

import base64
import json
from typing import Any


class BadCursor(ValueError):
    """A paging cursor that this API did not hand out."""


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """The key in ``cursor``, each part converted to the matching type in ``types``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError("wrong shape")
        return tuple(t(p) for t, p in zip(types, parts, strict=True))
    except (ValueError, TypeError) as e:
        raise BadCursor("cursor: not a cursor this API returned") from e
