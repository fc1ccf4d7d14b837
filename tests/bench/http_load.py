"""HTTP load for the console benchmarks, in its own process (so the clients' work is not
counted as the server's): reads {"url", "token", "concurrency", "requests": [[kind, path,
pages], ...]} as JSON on stdin, runs them, prints {"wall_s", "times": {kind: [ms, ...]}}.
A request of ``pages`` > 1 follows ``next_cursor`` that many times (one latency for all).

    echo '{...}' | python -m tests.bench.http_load
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main() -> None:
    job = json.loads(sys.stdin.read())
    headers = {"Authorization": f"Bearer {job['token']}"}
    queue = list(reversed(job["requests"]))
    times: dict[str, list[float]] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            kind, path, pages = queue.pop()
            t = time.perf_counter()
            for _ in range(pages):
                async with session.get(job["url"] + path, headers=headers) as resp:
                    body = await resp.json()
                    if resp.status != 200:
                        raise RuntimeError(f"{path}: {resp.status} {body}")
                if body.get("next_cursor"):
                    path = path.split("&cursor=")[0] + f"&cursor={body['next_cursor']}"
            times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)

    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(job["concurrency"])))
        wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "times": times}))


if __name__ == "__main__":
    asyncio.run(main())
