"""Helpers for tests that talk to real peers on loopback."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Awaitable, Callable


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` right now."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        other = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        )
        try:
            other.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            other.close()
    raise RuntimeError("no free port")


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


def free_sip_port(host: str = "127.0.0.1") -> int:
    """A port free for UDP and TCP whose next port is free for TCP too: a SIP peer such as
    baresip listens on UDP and TCP at ``port`` and on TLS at ``port + 1``, and refuses to start
    when an outgoing connection happens to hold that one (seen in a fresh-clone CI run)."""
    for _ in range(200):
        port = free_port(host=host)
        if port < 65000 and _can_bind(host, range(port + 1, port + 2), socket.SOCK_STREAM):
            return port
    raise RuntimeError("no free SIP port")


def free_port_block(size: int, host: str = "127.0.0.1") -> int:
    """The first port of ``size`` consecutive UDP ports that are free now (for RTP ranges)."""
    for _ in range(200):
        base = free_port(host=host)
        if base + size <= 65000 and base % 2 == 0 and _can_bind(
                host, range(base, base + size), socket.SOCK_DGRAM):
            return base
    raise RuntimeError("no free port block")


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
