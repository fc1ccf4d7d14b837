"""Helpers for tests that talk to real peers on loopback."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

_FIRST_PORT = 10_000  # below: well-known and fixed ports (SIPp's control port 8888, ...)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


class _PortPool:
    """Hands out loopback ports for the peers a test starts, so that two of them never get the
    same one.

    Why not ``bind(0)`` and close: a port found free that way is free only until someone binds
    it, and in this suite many do between a test picking a port and its peer binding it — the
    engine's own RTP range (200 ports, bound per call, later), a SIPp's media block, the other
    test worker picking at the same moment, the kernel giving one away as an outgoing
    connection's local port. Each seen once in a fresh-clone CI run (a transfer target that
    never answered, a SIP port the engine then bound itself).

    So ports come from below the kernel's ephemeral range (nothing binds there unasked), each
    xdist worker has its own slice, and within a worker a cursor walks its slice: a port is not
    handed out again until the slice wraps around, and then never one inside a range a
    session-long peer (Asterisk's RTP range, bound per call) still keeps. Every port handed out
    is also checked bindable at that moment, for whatever else the machine runs."""

    def __init__(self) -> None:
        low = max(_FIRST_PORT + 2_000, _ephemeral_low())
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
        index = int(worker) if worker.isdigit() else 0
        width = (low - _FIRST_PORT) // max(1, count)
        start = _FIRST_PORT + width * (index % max(1, count))
        self.slice = range(start, start + width)
        self.cursor = start + random.randrange(0, max(1, width // 2))  # processes sharing a slice
        self.kept: list[range] = []
        self.lock = threading.Lock()

    def take(self, size: int, check: Callable[[range], bool], *, keep: bool = False,
             even: bool = False) -> int:
        with self.lock:
            for _ in range(2 * len(self.slice)):
                base = self.cursor + (self.cursor % 2 if even else 0)
                if base + size > self.slice.stop:
                    self.cursor = self.slice.start
                    continue
                block = range(base, base + size)
                self.cursor = block.stop
                if any(block.start < k.stop and k.start < block.stop for k in self.kept):
                    continue
                if check(block):
                    if keep:
                        self.kept.append(block)
                    return base
            raise RuntimeError(f"no {size} free ports in {self.slice}")


_POOL = _PortPool()


def _can_bind(host: str, ports: range, kind: int) -> bool:
    """Whether every port in ``ports`` can be bound on ``host`` right now (all held at once,
    then released)."""
    socks: list[socket.socket] = []
    try:
        for p in ports:
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind((host, p))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1", *,
              keep: bool = False) -> int:
    """A port free for both UDP and TCP on ``host``, not handed to anyone else in this test
    run (see ``_PortPool``). ``keep``: for a peer living the whole session (never handed out
    again, even after the worker's slice wraps). ``kind`` is kept for callers that say which
    one they need; both are checked."""
    del kind
    return _POOL.take(1, lambda r: _can_bind(host, r, socket.SOCK_DGRAM)
                      and _can_bind(host, r, socket.SOCK_STREAM), keep=keep)


def free_sip_port(host: str = "127.0.0.1") -> int:
    """A port free for UDP and TCP whose next port is free for TCP too: a SIP peer such as
    baresip listens on UDP and TCP at ``port`` and on TLS at ``port + 1``."""
    return _POOL.take(2, lambda r: _can_bind(host, r, socket.SOCK_DGRAM)
                      and _can_bind(host, r, socket.SOCK_STREAM))


def free_port_block(size: int, host: str = "127.0.0.1", *, keep: bool = False) -> int:
    """The first port of ``size`` consecutive UDP ports (even first, for RTP ranges), free
    now and not handed to anyone else in this test run (see ``_PortPool``)."""
    return _POOL.take(size, lambda r: _can_bind(host, r, socket.SOCK_DGRAM), keep=keep,
                      even=True)


def port_held_by(pid: int, port: int, kind: int = socket.SOCK_DGRAM) -> bool:
    """Whether process ``pid`` has a socket bound (UDP) or listening (TCP) on ``port``: its
    socket inodes (/proc/<pid>/fd) matched against /proc/net. Read, not probed by binding the
    port ourselves (a probe holding it for a moment could be why the peer fails to bind), and
    by owner, so that a port someone else holds does not pass for the peer's."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
                  for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    table, listening = ("udp", None) if kind == socket.SOCK_DGRAM else ("tcp", "0A")
    for name in (table, table + "6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (len(fields) > 9 and fields[1].rsplit(":", 1)[-1] == f"{port:04X}"
                    and (listening is None or fields[3] == listening) and fields[9] in inodes):
                return True
    return False


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 5.0,
                     what: str = "condition", *,
                     between: Callable[[], Awaitable[object]] | None = None,
                     poll_s: float = 0.002) -> None:
    """Await ``condition()`` (a plain or an async check) becoming true, polled every
    ``poll_s``, failing after ``timeout_s`` of real time: how a test waits for something a real
    peer or socket makes happen, instead of sleeping a fixed time and hoping it happened.
    ``between`` runs before each poll, e.g. a fake clock's ``advance`` so timers fire while
    real threads answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        got = condition()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        if between is not None:
            await between()
        await asyncio.sleep(poll_s)


class PeerNotBound(RuntimeError):
    """A peer process exited, or did not bind its port in time."""


async def wait_bound(proc: asyncio.subprocess.Process, port: int,
                     kind: int = socket.SOCK_DGRAM, timeout_s: float = 15.0) -> None:
    """Until ``proc`` holds ``port`` (:func:`port_held_by`): how a test knows a peer it started
    (SIPp, baresip) is ready, instead of a fixed sleep that a loaded machine outlasts. Raises
    :class:`PeerNotBound` at once when the process exits first, or after ``timeout_s``."""
    def held() -> bool:
        if proc.returncode is not None:
            raise PeerNotBound(f"exited ({proc.returncode}) before binding port {port}")
        return port_held_by(proc.pid, port, kind)

    try:
        await wait_until(held, timeout_s, f"binding port {port}", poll_s=0.02)
    except AssertionError as e:
        raise PeerNotBound(str(e)) from None
