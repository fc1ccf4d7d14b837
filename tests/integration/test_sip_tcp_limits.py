"""SIP over TCP against hostile peers, over real loopback sockets: connections that never finish
their headers (slowloris), too many connections from one address or in all, idle connections,
and an engine whose file descriptors run out. Timers run on a fake clock; the descriptor test
runs a real ``ivr run`` under a low ``RLIMIT_NOFILE``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core.clock import FakeClock
from engine.sip.invite import IncomingInvite
from engine.sip.security import InboundPolicy
from engine.sip.stream import StreamLimits
from engine.sip.ua import UserAgent
from tests.netutil import free_port, free_port_block, wait_until

OPTIONS = ("OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\n"
           "Via: SIP/2.0/TCP 127.0.0.1:9;rport;branch=z9hG4bK-{n}\r\n"
           "From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: lim-{n}\r\n"
           "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


class Refuse:
    """A call handler (a UA without one answers OPTIONS 503: it would take no call)."""

    def on_invite(self, session: IncomingInvite) -> None:
        session.reject(486)


async def start(clock: FakeClock, limits: StreamLimits) -> tuple[UserAgent, int]:
    ua = UserAgent(policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "t"), clock=clock,
                   stream_limits=limits, handler=Refuse())
    local = await ua.start("127.0.0.1", 0, ["tcp"])
    return ua, local["tcp"][1]


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(4096), 2) == b""
    except (ConnectionError, TimeoutError):
        return True


async def test_slowloris_connections_are_closed_after_the_header_timeout() -> None:
    clock = FakeClock()
    ua, port = await start(clock, StreamLimits(header_timeout_s=10.0))
    tcp = ua.transports.streams["tcp"]
    try:
        conns = [await connect(port) for _ in range(20)]
        for _, w in conns:
            w.write(b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\n"
                    + b"X-Pad: " + b"a" * 6000)  # never finished
            await w.drain()
        await wait_until(lambda: sum(c.framer.buffered > 0 for c in tcp.connections.values())
                         == 20, what="20 partial messages")
        await clock.advance(9.0)
        assert len(tcp.connections) == 20  # not yet
        await clock.advance(3.0)
        assert all([await closed_by_peer(r) for r, _ in conns])
        assert tcp.stats.closed_header_timeout == 20
        await wait_until(lambda: not tcp.connections and tcp.inbound == 0, what="cleanup")
        r, w = await connect(port)  # and the listener still serves well-behaved peers
        w.write(OPTIONS.format(n=1).encode())
        assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)).startswith(b"SIP/2.0 200")
        w.close()
    finally:
        await ua.stop(drain_s=0)


async def test_a_message_dripped_slowly_but_within_the_timeout_is_served() -> None:
    clock = FakeClock()
    ua, port = await start(clock, StreamLimits(header_timeout_s=10.0))
    try:
        r, w = await connect(port)
        data = OPTIONS.format(n=2).encode()
        for i in range(0, len(data), 40):  # 8 s to send the whole message
            w.write(data[i:i + 40])
            await w.drain()
            await asyncio.sleep(0.005)
            await clock.advance(1.0)
        assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)).startswith(b"SIP/2.0 200")
        w.close()
    finally:
        await ua.stop(drain_s=0)


async def test_per_source_and_global_caps_refuse_extra_connections() -> None:
    clock = FakeClock()
    ua, port = await start(clock, StreamLimits(max_per_source=5, max_connections=8))
    tcp = ua.transports.streams["tcp"]
    try:
        first = [await connect(port) for _ in range(5)]
        await wait_until(lambda: tcp.inbound == 5, what="5 accepted")
        extra = [await connect(port) for _ in range(3)]
        assert all([await closed_by_peer(r) for r, _ in extra])
        assert tcp.stats.refused_per_source == 3 and tcp.inbound == 5
        for _, w in first:
            w.close()
        await wait_until(lambda: tcp.inbound == 0, what="the first five gone")
        again = [await connect(port) for _ in range(5)]  # the quota is given back
        await wait_until(lambda: tcp.inbound == 5, what="5 accepted again")
        for _, w in again:
            w.close()
    finally:
        await ua.stop(drain_s=0)
    ua, port = await start(FakeClock(), StreamLimits(max_per_source=100, max_connections=4))
    tcp = ua.transports.streams["tcp"]
    try:
        conns = [await connect(port) for _ in range(6)]
        await wait_until(lambda: tcp.stats.refused_global == 2, what="2 refused")
        assert tcp.inbound == 4
        for _, w in conns:
            w.close()
    finally:
        await ua.stop(drain_s=0)


async def test_idle_connections_are_closed() -> None:
    clock = FakeClock()
    ua, port = await start(clock, StreamLimits(idle_timeout_s=300.0))
    tcp = ua.transports.streams["tcp"]
    try:
        r, w = await connect(port)
        w.write(OPTIONS.format(n=3).encode())
        await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        await clock.advance(299.0)
        assert tcp.inbound == 1
        await clock.advance(2.0)
        assert await closed_by_peer(r)
        assert tcp.stats.closed_idle == 1
    finally:
        await ua.stop(drain_s=0)


@pytest.mark.slow
def test_out_of_descriptors_backs_off_quietly_and_recovers(tmp_path: Path) -> None:
    """An engine limited to 128 descriptors, 300 connections thrown at it: it neither spins nor
    floods its log, answers UDP meanwhile, and serves TCP again once the flood is gone."""
    port, rtp = free_port(), free_port_block(20)
    env = {**os.environ, "IVR_SIP__LISTEN": f"127.0.0.1:{port}",
           "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
           "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
           "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 18),
           "IVR_METRICS__LISTEN": "", "IVR_SIP__TCP_MAX_CONNECTIONS": "10000",
           "IVR_SIP__TCP_MAX_PER_SOURCE": "10000"}
    log = (tmp_path / "engine.log").open("w")
    proc = subprocess.Popen(["prlimit", "--nofile=128:128", sys.executable, "-m", "app.cli.main",
                             "run", "--demo"], env=env, stdout=log, stderr=subprocess.STDOUT)
    flood: list[socket.socket] = []
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(0.5)
        deadline = time.monotonic() + 60
        while True:  # until the engine answers OPTIONS over UDP
            udp.sendto(OPTIONS.format(n=0).replace("TCP", "UDP").encode(), ("127.0.0.1", port))
            try:
                if udp.recv(4096).startswith(b"SIP/2.0 200"):
                    break
            except TimeoutError:
                assert time.monotonic() < deadline, (tmp_path / "engine.log").read_text()[-2000:]
        for _ in range(300):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            flood.append(s)
        engine = psutil.Process(proc.pid)
        engine.cpu_percent(None)
        time.sleep(3.0)
        cpu = engine.cpu_percent(None)
        udp.sendto(OPTIONS.format(n=9).replace("TCP", "UDP").encode(), ("127.0.0.1", port))
        assert udp.recv(4096).startswith(b"SIP/2.0 200")  # UDP is served meanwhile
        assert cpu < 30, f"engine at {cpu}% CPU while out of descriptors"
        for s in flood:
            s.close()
        flood.clear()
        time.sleep(2.5)  # the accept loop's backoff (at most 2 s) runs out
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(OPTIONS.format(n=10).encode())
            assert s.recv(4096).startswith(b"SIP/2.0 200")
    finally:
        for s in flood:
            s.close()
        proc.terminate()
        proc.wait(15)
        log.close()
    lines = (tmp_path / "engine.log").read_text().splitlines()
    resource_lines = [ln for ln in lines if "out of file descriptors" in ln]
    assert 1 <= len(resource_lines) <= 3, lines[-20:]  # one line per 10 s, not thousands
    assert not [ln for ln in lines if "socket.accept() out of system resource" in ln]
