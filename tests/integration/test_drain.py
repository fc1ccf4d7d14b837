"""A draining node tells load balancers before it refuses a call: out-of-dialog OPTIONS (how
Kamailio's dispatcher probes) gets 503 with Retry-After, ``/readyz`` 503, ``/healthz`` stays 200
("draining": alive, do not restart it). Real sockets: a raw SIP peer and HTTP."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from core.call import Call
from tests.integration.engine_harness import running_engine
from tests.rawsip import header, open_peer


async def _never(call: Call) -> None:
    raise AssertionError("no calls here")


def options(n: int, peer: tuple[str, int], ua: tuple[str, int]) -> bytes:
    return (f"OPTIONS sip:ivr@{ua[0]}:{ua[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {peer[0]}:{peer[1]};rport;branch=z9hG4bK-d{n}\r\n"
            f"From: <sip:kamailio@{peer[0]}>;tag=k{n}\r\nTo: <sip:ivr@{ua[0]}>\r\n"
            f"Call-ID: probe-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()


async def test_drain_is_visible_to_probes_before_any_call_is_refused(tmp_path: Path) -> None:
    async with running_engine(tmp_path, lambda c: _never) as engine:
        assert engine.ua is not None and engine.metrics_address is not None
        base = "http://{}:{}".format(*engine.metrics_address)
        peer, peer_addr = await open_peer()
        ua_addr = engine.addresses["udp"]
        async with aiohttp.ClientSession() as http:
            peer.send(options(1, peer_addr, ua_addr), ua_addr)
            assert (await peer.next(b"SIP/2.0 ")).startswith(b"SIP/2.0 200")
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200 and (await r.json())["status"] == "ready"
            engine.ua.stop_accepting()  # what SIGTERM does first
            peer.send(options(2, peer_addr, ua_addr), ua_addr)
            answer = await peer.next(b"SIP/2.0 ")
            async with http.get(f"{base}/readyz") as r:
                ready = (r.status, (await r.json())["status"])
            async with http.get(f"{base}/healthz") as r:
                health = (r.status, (await r.json())["status"])
        assert peer.transport is not None
        peer.transport.close()
    assert answer.startswith(b"SIP/2.0 503") and header(answer, "Retry-After") == "5"
    assert ready == (503, "draining")
    assert health == (200, "draining")
