"""The Python load client (aiohttp): for benches that compare two servers it loads alike.

It is slower than the server, so its requests/s say little about the server alone; bench/cpu.py
measures the server's own CPU under wrk instead.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp


async def load(port: int, count: int, concurrency: int, path: str = "/health",
               expect: int | None = 200, headers: dict[str, str] | None = None) -> float:
    """Requests per second of GET `path` from `concurrency` concurrent clients."""
    url = f"http://127.0.0.1:{port}{path}"
    remaining = count
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     headers=headers) as http:
        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with http.get(url) as response:
                    if expect is not None and response.status != expect:
                        raise RuntimeError(f"{path} answered {response.status}")
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return count / (time.perf_counter() - started)
