"""Helpers for tests that talk to real peers on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable


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


def free_sip_port(host: str = "127.0.0.1") -> int:
    """A port free for UDP and TCP whose next port is free for TCP too: a SIP peer such as
    baresip listens on UDP and TCP at ``port`` and on TLS at ``port + 1``, and refuses to start
    when an outgoing connection happens to hold that one (seen in a fresh-clone CI run)."""
    for _ in range(200):
        port = free_port(host=host)
        if port >= 65000:
            continue
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((host, port + 1))
            return port
        except OSError:
            continue
        finally:
            probe.close()
    raise RuntimeError("no free SIP port")


def free_port_block(size: int, host: str = "127.0.0.1") -> int:
    """The first port of ``size`` consecutive UDP ports that are free now (for RTP ranges)."""
    for _ in range(200):
        base = free_port(host=host)
        if base + size > 65000 or base % 2:
            continue
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((host, p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0,
                     what: str = "condition") -> None:
    """Await ``condition()`` becoming true (polled every few ms), failing after ``timeout_s``:
    how a test waits for something a real peer or socket makes happen, instead of sleeping a
    fixed time and hoping it happened."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(0.002)
