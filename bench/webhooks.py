"""Signed webhook deliveries per second through the whole stack to PostgreSQL.

The bot runs as its own process (`python bot.py`, PostgreSQL via asyncpg). `wrk` (installed
when missing, as in bench/cpu.py) posts distinct signed deliveries of the reflections webhook,
each once, at a fixed concurrency for a few seconds, and the server's own CPU per delivery is
read from /proc. Beside it, in the same run and at the same concurrency, a plain asyncpg INSERT
loop writes comparable rows (one row, one commit each): the ratio says what signature checks,
validation, the replay guard, the audit record, the effect and HTTP cost per delivery. Without
wrk the Python client posts, and the figure then measures that client more than the server.

Then a steady 200 deliveries/s (open loop: each delivery leaves on schedule whatever the
others do) and its latency p99 (goal <= 20 ms).

What moved the figure (0.05 at first, 0.13 with Core statements): on PostgreSQL a delivery is
one statement (replay record, audit row and effect as CTEs, no BEGIN/COMMIT), deliveries in
flight at once travel as one statement over arrays (store/statement_batch.py), on a small
asyncpg pool without a reset round trip (store/driver_pool.py).

    .venv/bin/python -m bench.webhooks [--deliveries N] [--concurrency 16] [--steady 5]
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

from bench.cpu import Load, cpu_seconds, ensure_wrk, run_wrk
from harness.process import base_env, free_port, start_bot, wait_until_ready
from harness.signing import SECRETS, settings_overrides, standard_headers
from store import migrate

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PATH = "/webhooks/reflections"
SECRET = SECRETS["APP_REFLECTIONS_WEBHOOK_SECRET"]
STEADY_RATE = 200.0


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


def signed_deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    bodies = [json.dumps({"action": "upsert", "reflection_id": f"r{uuid.uuid4().hex}",
                          "user_id": f"u{i % 50}", "text": "a reflection " * 20}).encode()
              for i in range(count)]
    return [(body, standard_headers(SECRET, body)) for body in bodies]


async def bench_steady(port: int, rate: float, seconds: float) -> list[float]:
    """Deliveries sent on a fixed schedule (`rate` per second); their latencies."""
    count = int(rate * seconds)
    signed = signed_deliveries(count)
    url = f"http://127.0.0.1:{port}{PATH}"
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(index: int) -> None:
            body, headers = signed[index]
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"delivery failed: {response.status}")
            latencies.append(time.perf_counter() - started)

        begin = time.perf_counter()
        tasks = []
        for index in range(count):
            delay = begin + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    return latencies


async def bench_http(port: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    signed = signed_deliveries(count)
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


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


def write_delivery_script(folder: Path, count: int) -> Path:
    """A wrk script posting `count` distinct signed deliveries, each once, then stopping.

    The deliveries live in a data file beside the script, one per line (body, then header names
    and values, tab-separated: JSON bodies and these headers hold no tab or newline), read when
    wrk starts: as table literals in the script, Lua refuses more than 65,536 constants in one
    function (about 20,000 deliveries)."""
    data = folder / f"deliveries-{uuid.uuid4().hex[:8]}.tsv"
    with data.open("w") as out:
        for body, headers in signed_deliveries(count):
            fields = [body.decode(), *(part for item in headers.items() for part in item)]
            out.write("\t".join(fields) + "\n")
    lines = ["local requests = {}", "local next_index = 0",
             # Formatted in init, once wrk has set the host and path of its URL.
             "init = function(args)",
             f"  for line in io.lines({lua_string(str(data))}) do",
             "    local fields = {}",
             "    for field in line:gmatch('[^\\t]+') do fields[#fields + 1] = field end",
             "    local headers = {}",
             "    for i = 2, #fields, 2 do headers[fields[i]] = fields[i + 1] end",
             "    requests[#requests + 1] = wrk.format('POST', nil, headers, fields[1])",
             "  end",
             "end",
             "request = function()",
             "  next_index = next_index + 1",
             "  if next_index > #requests then wrk.thread:stop(); next_index = 1 end",
             "  return requests[next_index]",
             "end"]
    script = data.with_suffix(".lua")
    script.write_text("\n".join(lines))
    return script


def bench_wrk(wrk: str, pid: int, port: int, folder: Path, count: int, seconds: float,
              concurrency: int) -> Load:
    """wrk posts distinct signed deliveries for `seconds`; the server's CPU meanwhile. A run
    that used up its `count` deliveries is refused: repeats would be cheap duplicates."""
    script = write_delivery_script(folder, count)
    load = run_wrk(wrk, pid, f"http://127.0.0.1:{port}{PATH}", seconds=seconds,
                   connections=concurrency, script=str(script))
    script.unlink()
    script.with_suffix(".tsv").unlink()
    if load.requests >= count:
        raise RuntimeError(f"wrk used up all {count} deliveries: raise --deliveries")
    if load.non_2xx:
        raise RuntimeError(f"{load.non_2xx} deliveries were refused")
    return load


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


async def webhook_figures(deliveries: int | None = None, concurrency: int = 16,
                          steady_seconds: float = 5.0, seconds: float = 3.0) -> dict[str, float]:
    """Rates (median of 3 interleaved rounds), their ratio, and p99 at a steady 200/s."""
    # Enough distinct deliveries for 25,000/s, twice the plain INSERT loop on a fast host.
    deliveries = deliveries or max(20000, int(seconds * 25000))
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
            await bench_http(port, 200, concurrency)  # warm-up
            wrk = ensure_wrk()
            http_rates, pg_rates, cpu = [], [], []
            load_by = "wrk" if wrk else "the Python client (client-bound: it measures the client)"
            print(f"concurrency {concurrency}, 3 rounds, deliveries posted by {load_by}")
            for _ in range(3):  # interleaved rounds, so machine noise hits both alike
                if wrk is not None:
                    load = bench_wrk(wrk, process.pid, port, Path(folder), deliveries,
                                     seconds, concurrency)
                    print(f"{'signed webhook -> PostgreSQL':34s} {load.rate:8.0f} /s   "
                          f"p99 {load.p99_ms or 0:6.1f} ms   {load.cpu_us:5.0f} us server CPU")
                    http_rates.append(load.rate)
                    cpu.append(load.cpu_us / 1e6)
                else:
                    before = cpu_seconds(process.pid)
                    http_rates.append(report("signed webhook -> PostgreSQL",
                                             *await bench_http(port, deliveries, concurrency)))
                    cpu.append((cpu_seconds(process.pid) - before) / deliveries)
                pg_rates.append(report("plain asyncpg INSERT",
                                       *await bench_asyncpg(dsn, 3000, concurrency)))
            ratio = statistics.median(http_rates) / statistics.median(pg_rates)
            print(f"server CPU per delivery (median): {statistics.median(cpu) * 1e6:.0f} us")
            print(f"ratio webhook / plain INSERT (median of rounds): {ratio:.2f} "
                  f"(goal >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'})")
            latencies = await bench_steady(port, STEADY_RATE, steady_seconds)
            p99 = percentile(latencies, .99) * 1000
            print(f"steady {STEADY_RATE:.0f} deliveries/s for {steady_seconds:.0f} s: p50 "
                  f"{percentile(latencies, .5) * 1000:.1f} ms, p99 {p99:.1f} ms "
                  f"(goal <= 20 ms: {'met' if p99 <= 20 else 'NOT met'})")
            return {"webhook_rate": statistics.median(http_rates),
                    "insert_rate": statistics.median(pg_rates), "ratio": ratio,
                    "steady_p99_ms": p99, "cpu_us": statistics.median(cpu) * 1e6}
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=15)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=None,
                        help="prepared for each round, each posted once (default: 25,000/s)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--steady", type=float, default=5.0, help="seconds at 200/s")
    args = parser.parse_args()
    asyncio.run(webhook_figures(args.deliveries, args.concurrency, args.steady))


if __name__ == "__main__":
    main()
