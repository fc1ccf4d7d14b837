"""CPU of the media session's hot paths with real sockets, without SIP or a load generator.

``bench_media`` measures the whole engine under SIPp, where the kernel work of the load
generator (and of the capture) is charged to whoever sends; on a shared 2-core box that figure
moves by 30 % between runs. This one isolates what the engine's own code costs, per stream and
tick, so a change to the send or receive path can be judged in a minute:

* ``tick``: N real :class:`MediaSession` objects (uvloop when installed, as the engine runs)
  sending silence to N bound peer sockets (a listening caller, as real phones are), driven by
  the real :class:`Pacer` tick function; CPU per stream-tick, and beside it the floor: a plain
  ``socket.sendto`` of the same packets (the kernel's part).
* ``prompt``: the same while every stream plays a G.711 prompt.
* ``rx``: the receive path fed the caller's packets directly: CPU per packet, through
  ``on_datagram`` (the Python path) and through the protocol's ``datagram_received`` (what the
  event loop calls: the C receive lane when built, ``engine/rtp/_rtprecv.c``).

Each figure is the best of ``repeats`` runs (thread CPU time), as the machine is shared.

    python -m tests.bench.bench_media_tick [streams] [ticks] [repeats]
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from app.loop import run
from audio.tones import tone
from engine.media.ports import PortAllocator
from engine.media.session import MediaSession
from engine.rtp.pacer import Pacer
from engine.rtp.packet import RtpPacket
from engine.rtp.rxlane import RtpProtocol

RTP_BASE = 41000


def _peers(n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # never read: drops are cheap
        s.bind(("127.0.0.1", 0))
        out.append(s)
    return out


async def _sessions(n: int, peers: list[socket.socket]) -> list[MediaSession]:
    ports = PortAllocator(RTP_BASE, RTP_BASE + 4 * n)
    out = []
    for peer in peers:
        port, transport, proto = await ports.bind("127.0.0.1", RtpProtocol)
        assert isinstance(proto, RtpProtocol)
        out.append(MediaSession(codec="PCMA", payload_type=8, telephone_event_pt=101,
                                remote=peer.getsockname(), local_port=port, transport=transport,
                                protocol=proto, media_timeout_s=0))
    return out


def _ticks(pacer: Pacer, ticks: int) -> float:
    loop_now = asyncio.get_running_loop().time
    c0 = time.thread_time()
    for _ in range(ticks):
        now = loop_now()
        pacer._run_tick(now, now)
    return time.thread_time() - c0


def _floor(sessions: list[MediaSession], peers: list[socket.socket], ticks: int) -> float:
    socks = []
    for _ in sessions:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    dests = [p.getsockname() for p in peers]
    data = bytes(172)
    c0 = time.thread_time()
    for _ in range(ticks):
        for s, d in zip(socks, dests, strict=True):
            s.sendto(data, d)
    cpu = time.thread_time() - c0
    for s in socks:
        s.close()
    return cpu


def _rx_packets(n: int, count: int) -> list[list[bytes]]:
    out = []
    for k in range(n):
        ts, seq = 1000 * k, 100 * k
        out.append([RtpPacket(8, (seq + i) & 0xFFFF, (ts + 160 * i) & 0xFFFFFFFF, 0x1000 + k,
                              b"\xd5" * 160, i == 0).serialize() for i in range(count)])
    return out


def _feed(handlers: Sequence[Callable[[bytes, Any], None]], rx: list[list[bytes]],
          addrs: list[tuple[str, int]], packets: range) -> float:
    """Each stream's packets ``packets`` to its handler, stream by stream per tick: CPU s."""
    c0 = time.thread_time()
    for i in packets:
        for handle, pk, a in zip(handlers, rx, addrs, strict=True):
            handle(pk[i], a)
    return time.thread_time() - c0


async def main(n: int, ticks: int, repeats: int) -> None:
    peers = _peers(n)
    sessions = await _sessions(n, peers)
    pacer = Pacer()
    for s in sessions:
        pacer.add(s)
    us = 1e6 / (n * ticks)
    best: dict[str, float] = {}

    def keep(name: str, cpu: float) -> None:
        best[name] = min(best.get(name, float("inf")), cpu * us)

    prompt = tone(440, ticks * 0.02 * (repeats + 1))
    rx = _rx_packets(n, 2 * ticks * repeats + 1)
    protocols = [cast(RtpProtocol, s.transport.get_protocol()) for s in sessions]
    addrs = [p.getsockname() for p in peers]
    pos = 0
    for _ in range(repeats):
        keep("tick, silence", _ticks(pacer, ticks))
        keep("floor: socket.sendto", _floor(sessions, peers, ticks))
        for s in sessions:
            s.playout.enqueue(prompt)
        keep("tick, prompt", _ticks(pacer, ticks))
        for s in sessions:
            s.playout.stop_all("bench")
        await asyncio.sleep(0)
        for name, handlers in (("rx: on_datagram", [s.on_datagram for s in sessions]),
                               ("rx: datagram_received",
                                [p.datagram_received for p in protocols])):
            keep(name, _feed(handlers, rx, addrs, range(pos, pos + ticks)))
            pos += ticks
    print(f"{n} streams x {ticks} ticks, best of {repeats} (CPU us per stream-tick / packet):")
    for name, v in best.items():
        print(f"  {name:<24} {v:6.2f}")
    assert all(s.stats.tx_packets for s in sessions) and np.all([s.stats.rx_packets > 0
                                                                for s in sessions])
    for s in sessions:
        s.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    run(main(*(args + [500, 200, 3][len(args):])))
