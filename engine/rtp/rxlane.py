"""The RTP socket's protocol and the set-up of the receive fast lane (``_rtprecv.c``).

The event loop calls the protocol's ``datagram_received`` with each datagram. Without the C
module that is the method below, which hands the datagram to the media session's
``on_datagram``. With it built, an ``RxLane`` is installed in its place: it takes the common
caller packet (the latched source's audio, locked SSRC, in sequence, nobody listening) in C and
hands every other datagram to the method (``python_path``), so the session's Python code still
decides everything but the common case. ``engine/media/session.py`` says what the lane changes.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import types
from collections.abc import Callable
from typing import Any, Protocol

from core.clock import Clock, SystemClock
from engine.rtp.source import SourceGuard
from engine.rtp.stream import NATIVE_SWITCH

log = logging.getLogger("ivr.media")

DatagramHandler = Callable[[bytes, tuple[Any, ...]], None]


class DatagramSink(Protocol):
    """What the protocol feeds: a media session."""

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None: ...


def _native_lane() -> Callable[..., Any] | None:
    """``engine/rtp/_rtprecv.c``'s ``RxLane`` when built (and not switched off with
    ``IVR_RTP_NATIVE=0``, like the send path): the receive fast lane without Python frames."""
    if os.environ.get(NATIVE_SWITCH, "1") == "0":
        return None
    try:
        lane: Callable[..., Any] = importlib.import_module("engine.rtp._rtprecv").RxLane
        return lane
    except ImportError:  # not built: on_datagram's Python fast lane does the same
        return None


NATIVE_RX_LANE = _native_lane()


class RtpProtocol(asyncio.DatagramProtocol):
    """The RTP socket's protocol: hands each datagram to its media session, nothing else."""

    def __init__(self) -> None:
        self.session: DatagramSink | None = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.session is not None:  # IPv6 addresses come with flow info and scope: drop them
            self.session.on_datagram(data, addr if len(addr) == 2 else (str(addr[0]),
                                                                        int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("rtp socket error: %r", exc)

    def use_lane(self, lane: DatagramHandler) -> None:
        """Let ``lane`` (a native ``RxLane``) receive each datagram first: the event loop calls
        ``datagram_received`` on this object, and an instance attribute is found before the
        method, so the common packet runs no Python frame at all."""
        self.datagram_received = lane  # type: ignore[method-assign,assignment]

    def python_path(self) -> DatagramHandler:
        """What the lane hands every packet it does not take: the method itself."""
        return types.MethodType(RtpProtocol.datagram_received, self)


def clock_now(clock: Clock) -> Callable[[], float]:
    """The clock's ``now`` for the native lane, as a C-level callable where possible: the
    system clock's ``now`` is the running loop's ``time`` (a Python frame otherwise)."""
    if type(clock) is SystemClock:
        try:
            return asyncio.get_running_loop().time
        except RuntimeError:
            pass
    return clock.now


def install_lane(protocol: RtpProtocol, session: DatagramSink, guard: SourceGuard,
                 stats: object, clock: Clock) -> Any:
    """Put the native lane in front of ``protocol`` for ``session`` (whose ``guard`` and
    ``stats``, a ``MediaStats``, it reads and writes). Returns the lane, which the session
    must ``detach()`` when it closes, or None when the C module is not built or switched off."""
    protocol.session = session
    if NATIVE_RX_LANE is None:
        return None
    lane = NATIVE_RX_LANE(session, guard, stats, clock_now(clock), protocol.python_path())
    protocol.use_lane(lane)
    return lane
