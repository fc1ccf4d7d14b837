"""Cost of verifying one inbound Identity header on the event loop (campaigns.branding).

What an INVITE with a branded PASSporT costs the engine before it answers: the evidence taken
from the parsed INVITE (engine.identity.evidence_of) and the verifier's verdict, with the
certificate chain already checked for that x5u (every call after the first) and without (the
first call per certificate, or a cold cache), and a failing token (tampered signature). The
verdict runs on the event loop; this says whether that is within the "under a millisecond"
rule of docs/DESIGN.md.

    python -m tests.bench.bench_identity [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from campaigns.branding import IdentityChecker
from campaigns.certs import make_test_ca
from campaigns.passport import TrustStore, identity_header, rich_call_data, sign
from engine.identity import evidence_of
from engine.sip.message import parse_message

URL = "https://cert.example.invalid/signer.pem"
ORIG, DEST = "+861055550101", "+8613800138000"


def invite(value: str) -> bytes:
    return ("INVITE sip:8613800138000@127.0.0.1:5080 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n"
            f"From: <sip:{ORIG}@127.0.0.1>;tag=a\r\nTo: <sip:{DEST}@127.0.0.1>\r\n"
            "Call-ID: x@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Identity: {value}\r\nContent-Length: 0\r\n\r\n").encode()


def measure(label: str, n: int, run: object) -> None:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    print(f"{label:48} p50 {statistics.median(times):7.0f} µs   "
          f"p99 {times[int(len(times) * 0.99) - 1]:7.0f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    n = ap.parse_args().n
    _, ca, key, signer = make_test_ca("Bench")
    rcd, rcdi = rich_call_data("Acme 银行", call_reason="账单提醒")
    token = sign(key, x5u=URL, orig=ORIG, dest=[DEST], iat=int(time.time()), rcd=rcd, rcdi=rcdi)
    good = parse_message(invite(identity_header(token, URL)[1]))
    bad = parse_message(invite(identity_header(token[:-4] + "AAAA", URL)[1]))
    warm = IdentityChecker(TrustStore([ca], {URL: [signer, ca]}))
    loop = asyncio.new_event_loop()

    def verdict(checker: IdentityChecker, msg: object) -> None:
        v = loop.run_until_complete(checker.verify(evidence_of(msg)))  # type: ignore[arg-type]
        assert v.verstat.startswith("TN-Validation"), v

    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, n={n}")
    measure("evidence from a parsed INVITE", n, lambda: evidence_of(good))  # type: ignore[arg-type]
    measure("verdict, chain cached (every call after the 1st)", n, lambda: verdict(warm, good))
    measure("verdict, chain checked (cold)", n,
            lambda: verdict(IdentityChecker(TrustStore([ca], {URL: [signer, ca]})), good))
    measure("verdict, tampered signature", n, lambda: verdict(warm, bad))
    loop.close()


if __name__ == "__main__":
    main()
