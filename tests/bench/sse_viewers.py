"""Live-event viewers for ``bench_console_fanout``: N Server-Sent Events connections to the
console, in their own process (so parsing the streams costs the engine nothing). Prints
``ready`` once every stream is open; on SIGTERM prints one JSON line: events and bytes per
viewer, and the close reasons the server gave.

    python -m tests.bench.sse_viewers URL TOKEN N
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp


class Viewers:
    def __init__(self, url: str, token: str, n: int) -> None:
        self.url, self.token, self.n = url, token, n
        self.per = [{"events": 0, "bytes": 0} for _ in range(n)]
        self.reasons: list[str] = []
        self.opened = asyncio.Event()
        self.connected = 0

    async def one(self, session: aiohttp.ClientSession, stats: dict[str, int]) -> None:
        async with session.get(self.url + "/api/events",
                               headers={"Authorization": f"Bearer {self.token}"},
                               timeout=aiohttp.ClientTimeout(total=None)) as resp:
            self.connected += 1
            if self.connected == self.n:
                self.opened.set()
            event = ""
            async for raw in resp.content:
                stats["bytes"] += len(raw)
                line = raw.decode()
                if line.startswith("event: "):
                    event = line[7:].strip()
                elif line.startswith("data: "):
                    stats["events"] += 1
                    if event == "stream.close":
                        self.reasons.append(json.loads(line[6:])["reason"])
                        return

    def report(self) -> dict[str, object]:
        events = [p["events"] for p in self.per]
        return {"viewers": self.n, "events_min": min(events), "events_max": max(events),
                "events_total": sum(events), "bytes_total": sum(p["bytes"] for p in self.per),
                "closed": self.reasons}


async def main(url: str, token: str, n: int) -> None:
    viewers = Viewers(url, token, n)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.ensure_future(viewers.one(session, stats)) for stats in viewers.per]
        await asyncio.wait_for(viewers.opened.wait(), 60)
        print("ready", flush=True)
        await stop.wait()
        for t in tasks:
            t.cancel()
    print(json.dumps(viewers.report()), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
