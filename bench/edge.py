"""The edge: GET /health through the whole middleware stack against a bare aiohttp app.

Both servers run as their own processes and are loaded alternately by the same client, so the
ratio (goal >= 0.7) says what request IDs, security headers, errors, the rate limiter and auth
cost per request. Then rate-limit decisions per second for each backend.

    .venv/bin/python -m bench.edge [--requests 4000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as redis_asyncio

from bench.startup import BARE_APP
from edge.rate_limit import MemoryBackend, Rate, RedisBackend
from harness.process import base_env, free_port, start_bot, wait_until_ready

BARE = BARE_APP.replace('"/readyz"', '"/health"').replace("ready)", "ready)\n"
                                                          "app.router.add_get('/readyz', ready)")


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


async def decisions_per_second(backend: object, count: int) -> float:
    rate = Rate(limit=10**9, window=60)
    started = time.perf_counter()
    for index in range(count):
        await backend.hit(f"read:{index % 1000}", rate, time.time())  # type: ignore[attr-defined]
    return count / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bot_port, bare_port = free_port(), free_port()
        env = base_env(Path(folder), bot_port, LOG_LEVEL="WARNING",
                       RATE_LIMIT_HEALTH="100000000/minute")
        bot = start_bot(Path(folder), env)
        bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)],  # noqa: ASYNC220
                                text=True)
        try:
            wait_until_ready(bot_port, bot)
            wait_until_ready(bare_port, bare)
            await load(bot_port, 500, args.concurrency)
            await load(bare_port, 500, args.concurrency)
            full, plain = [], []
            for _ in range(3):
                full.append(await load(bot_port, args.requests, args.concurrency))
                plain.append(await load(bare_port, args.requests, args.concurrency))
            print(f"GET /health, {args.requests} requests x 3 rounds, concurrency "
                  f"{args.concurrency}")
            print(f"  full middleware stack {statistics.median(full):8.0f} req/s")
            print(f"  bare aiohttp app      {statistics.median(plain):8.0f} req/s")
            ratio = statistics.median(full) / statistics.median(plain)
            print(f"  ratio {ratio:.2f} (goal >= 0.70: {'met' if ratio >= 0.7 else 'NOT met'})")
        finally:
            for process in (bot, bare):
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=15)
    memory = await decisions_per_second(MemoryBackend(), 200_000)
    print(f"rate-limit decisions/s: memory {memory:,.0f}")
    client = redis_asyncio.Redis.from_url("redis://127.0.0.1:6379/14")
    try:
        redis_rate = await decisions_per_second(RedisBackend(client, prefix="bench:"), 5_000)
        print(f"rate-limit decisions/s: redis  {redis_rate:,.0f} (one round trip each)")
        await client.flushdb()
    except (OSError, redis_asyncio.RedisError) as exc:
        print(f"rate-limit decisions/s: redis unavailable ({type(exc).__name__})")
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
