"""A bare SIP answerer for the call set-up benchmark: the engine's UA, answering at once with a
fixed SDP (signalling only, no media). Prints its CPU time on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys

from engine.sip.invite import IncomingInvite
from engine.sip.security import InboundPolicy
from engine.sip.ua import UserAgent

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


class Answer:
    def on_invite(self, session: IncomingInvite) -> None:
        session.answer(SDP)


async def main(port: int) -> None:
    ua = UserAgent(handler=Answer(), policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "b"),
                   max_calls=100000)
    await ua.start("127.0.0.1", port, ["udp"])
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"cpu_s={ru.ru_utime + ru.ru_stime:.2f} calls={ua.stats.calls_in} "
          f"retrans={ua.layer.retransmissions} maxrss_mb={ru.ru_maxrss / 1024:.0f}", flush=True)
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
