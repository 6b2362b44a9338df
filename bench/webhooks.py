"""Signed webhook deliveries per second through the whole stack to PostgreSQL.

The bot runs as its own process (`python bot.py`, PostgreSQL via asyncpg); this process signs
deliveries and posts them at a fixed concurrency. Beside it, in the same run and at the same
concurrency, a plain asyncpg INSERT loop writes comparable rows: the ratio says what signature
checks, validation, the replay guard, the audit record and HTTP cost per delivery.

    .venv/bin/python -m bench.webhooks [--deliveries 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

from harness.process import base_env, free_port, start_bot, wait_until_ready
from harness.signing import SECRETS, settings_overrides, standard_headers
from store import migrate

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PATH = "/webhooks/reflections"
SECRET = SECRETS["APP_REFLECTIONS_WEBHOOK_SECRET"]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_concurrently(count: int, concurrency: int, one: object) -> tuple[float, list[float]]:
    """Run `one(i)` for i in range(count) with `concurrency` workers; (seconds, latencies)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            started = time.perf_counter()
            await one(index)  # type: ignore[operator]
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return time.perf_counter() - started, latencies


async def bench_http(port: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    bodies = [json.dumps({"action": "upsert", "reflection_id": f"r{uuid.uuid4().hex}",
                          "user_id": f"u{i % 50}", "text": "a reflection " * 20}).encode()
              for i in range(count)]
    signed = [(body, standard_headers(SECRET, body)) for body in bodies]
    url = f"http://127.0.0.1:{port}{PATH}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(index: int) -> None:
            body, headers = signed[index]
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"delivery failed: {response.status}")
                await response.read()

        return await run_concurrently(count, concurrency, one)


async def bench_asyncpg(dsn: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_rows "
                       "(id serial primary key, key text unique, body text, at timestamptz)")
    try:
        async def one(index: int) -> None:
            await pool.execute("INSERT INTO bench_rows (key, body, at) VALUES ($1, $2, now())",
                               uuid.uuid4().hex, "a reflection " * 20)

        return await run_concurrently(count, concurrency, one)
    finally:
        await pool.close()


def report(label: str, seconds: float, latencies: list[float]) -> float:
    rate = len(latencies) / seconds
    print(f"{label:34s} {rate:8.0f} /s   p50 {percentile(latencies, .5) * 1000:6.1f} ms"
          f"   p99 {percentile(latencies, .99) * 1000:6.1f} ms")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    url = "postgresql+asyncpg://" + dsn.split("://", 1)[1]
    await migrate.upgrade_async(url)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = base_env(Path(folder), port, DATABASE_URL=url, LOG_LEVEL="WARNING",
                       RATE_LIMIT_WEBHOOK="1000000/minute",
                       **{key.upper(): str(value) for key, value in settings_overrides().items()})
        process = start_bot(Path(folder), env)
        try:
            wait_until_ready(port, process)
            await bench_http(port, 200, args.concurrency)  # warm-up
            http_rates, pg_rates = [], []
            print(f"{args.deliveries} deliveries, concurrency {args.concurrency}, 3 rounds")
            for _ in range(3):  # interleaved rounds, so machine noise hits both alike
                http_rates.append(report("signed webhook -> PostgreSQL",
                                         *await bench_http(port, args.deliveries,
                                                           args.concurrency)))
                pg_rates.append(report("plain asyncpg INSERT",
                                       *await bench_asyncpg(dsn, args.deliveries,
                                                            args.concurrency)))
            ratio = statistics.median(http_rates) / statistics.median(pg_rates)
            print(f"ratio webhook / plain INSERT (median of rounds): {ratio:.2f}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=15)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
