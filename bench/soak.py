"""Soak: mixed traffic against the real process for a long while; resident memory must settle.

`python bot.py` runs on PostgreSQL and Redis (the replica setup); this process sends, from 200
client addresses (X-Forwarded-For through a trusted proxy) at a fixed concurrency, a mix of
probes, operator reads, /api/v1 reads and writes, signed webhooks (new deliveries and
duplicates), refused requests (no key, wrong key, bad ids, bad JSON, unsupported encodings),
HTTP the parser refuses, and now and then a client that sends half a request and stalls. The
process's resident memory is sampled every 10 s; the run fails when memory at the end is more
than 10% above its value after the warm-up, on any answer of 500 or more, or on a traceback.

    .venv/bin/python -m bench.soak [--seconds 600] [--warmup 60] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from harness.databases import temporary_postgres
from harness.fuzzing import API_KEY, tracebacks
from harness.process import base_env, free_port, start_bot, wait_until_ready
from harness.signing import PATHS, SECRETS, encode, standard_headers

REDIS_URL = "redis://127.0.0.1:6379/9"
GUILDS = [str(123456789012345000 + number) for number in range(20)]


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Traffic:
    def __init__(self, base: str, port: int) -> None:
        self.base = base
        self.port = port
        self.statuses: Counter[int] = Counter()
        self.kinds: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.server_errors: list[str] = []
        self.clients = itertools.cycle(f"10.77.{n // 250}.{n % 250 + 1}" for n in range(200))
        self.sent_deliveries: list[tuple[bytes, dict[str, str]]] = []
        self.stalled: set[asyncio.Task[None]] = set()  # half-sent requests waiting to be cut

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-Forwarded-For": next(self.clients), **extra}

    async def request(self, session: aiohttp.ClientSession, kind: str, method: str, path: str,
                      **kwargs: object) -> None:
        started = time.perf_counter()
        async with session.request(method, self.base + path, **kwargs) as response:  # type: ignore[arg-type]
            await response.read()
            self.latencies.append(time.perf_counter() - started)
            self.statuses[response.status] += 1
            self.kinds[kind] += 1
            if response.status >= 500 and not (response.status == 503 and path in (
                    "/api/v1/drive/sync",)):
                self.server_errors.append(f"{response.status} {method} {path}")

    def mix(self) -> list[tuple[int, Callable[[aiohttp.ClientSession], Awaitable[None]]]]:
        key = {"X-Api-Key": API_KEY}
        reflections, reflections_secret = PATHS["reflections"]
        premium, premium_secret = PATHS["premium-invalidate"]

        async def health(s: aiohttp.ClientSession) -> None:
            await self.request(s, "health", "GET", "/health", headers=self.headers())

        async def ready(s: aiohttp.ClientSession) -> None:
            await self.request(s, "readyz", "GET", "/readyz", headers=self.headers())

        async def me(s: aiohttp.ClientSession) -> None:
            await self.request(s, "me", "GET", "/api/v1/me", headers=self.headers(**key))

        async def config_read(s: aiohttp.ClientSession) -> None:
            guild = GUILDS[len(self.latencies) % len(GUILDS)]
            await self.request(s, "config read", "GET", f"/api/v1/guilds/{guild}/config",
                               headers=self.headers(**key))

        async def config_write(s: aiohttp.ClientSession) -> None:
            guild = GUILDS[len(self.latencies) % len(GUILDS)]
            await self.request(s, "config write", "PUT", f"/api/v1/guilds/{guild}/config",
                               headers=self.headers(**key),
                               json={"settings": {"n": len(self.latencies) % 1000}})

        async def audit(s: aiohttp.ClientSession) -> None:
            await self.request(s, "audit", "GET", f"/api/v1/guilds/{GUILDS[0]}/audit?limit=50",
                               headers=self.headers(**key))

        async def webhook(s: aiohttp.ClientSession) -> None:
            body = encode({"action": "upsert", "reflection_id": f"soak-{uuid.uuid4().hex}",
                           "user_id": f"user-{len(self.latencies) % 500}", "text": "soak"})
            headers = standard_headers(SECRETS[reflections_secret], body)
            if len(self.sent_deliveries) < 200:
                self.sent_deliveries.append((body, headers))
            await self.request(s, "webhook", "POST", reflections, data=body,
                               headers={**headers, **self.headers()})

        async def duplicate(s: aiohttp.ClientSession) -> None:
            if not self.sent_deliveries:
                return
            body, headers = self.sent_deliveries[len(self.latencies) % len(self.sent_deliveries)]
            await self.request(s, "duplicate", "POST", reflections, data=body,
                               headers={**headers, **self.headers()})

        async def invalidate(s: aiohttp.ClientSession) -> None:
            body = encode({"user_id": f"user-{len(self.latencies) % 500}"})
            await self.request(s, "invalidate", "POST", premium, data=body, headers={
                **standard_headers(SECRETS[premium_secret], body), **self.headers()})

        async def refused(s: aiohttp.ClientSession) -> None:
            choice = len(self.latencies) % 6
            if choice == 0:
                await self.request(s, "refused", "GET", "/api/v1/me", headers=self.headers())
            elif choice == 1:
                await self.request(s, "refused", "GET", "/api/v1/guilds/%C2%B2/config",
                                   headers=self.headers(**key))
            elif choice == 2:
                await self.request(s, "refused", "PUT", f"/api/v1/guilds/{GUILDS[1]}/config",
                                   data=b"{not json", headers=self.headers(
                                       **key, **{"Content-Type": "application/json"}))
            elif choice == 3:
                await self.request(s, "refused", "POST", reflections, data=b"{}", headers=
                                   self.headers(**{"Content-Type": "application/json",
                                                   "Content-Encoding": "br"}))
            elif choice == 4:
                await self.request(s, "refused", "GET", "/no/such/route", headers=self.headers())
            else:
                await self.request(s, "refused", "GET", "/metrics", headers=self.headers(
                    **{"X-Api-Key": "wrong"}))

        async def operator(s: aiohttp.ClientSession) -> None:
            path = "/metrics" if len(self.latencies) % 2 else "/api/observability"
            await self.request(s, "operator", "GET", path, headers=self.headers(**key))

        async def parser_refusal(_: aiohttp.ClientSession) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nBad\x00Header: 1\r\n\r\n")
            status = int((await reader.readline()).split()[1])
            writer.close()
            self.statuses[status] += 1
            self.kinds["parser refusal"] += 1

        async def half_sent(_: aiohttp.ClientSession) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(b"POST /webhooks/reflections HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         b"100\r\nContent-Type: application/json\r\n\r\n{")

            async def wait_for_close() -> None:
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(reader.read(), 40)
                writer.close()
                self.kinds["half-sent (closed by the server)"] += 1

            self.stalled.add(asyncio.create_task(wait_for_close()))

        return [(20, health), (5, ready), (10, me), (10, config_read), (4, config_write),
                (4, audit), (20, webhook), (6, duplicate), (4, invalidate), (10, refused),
                (2, operator), (2, parser_refusal), (1, half_sent)]


async def drive(traffic: Traffic, seconds: float, concurrency: int,
                on_tick: Callable[[float], None]) -> None:
    weighted = [action for weight, action in traffic.mix() for _ in range(weight)]
    deadline = time.monotonic() + seconds
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while time.monotonic() < deadline:
                action = weighted[next(counter) % len(weighted)]
                try:
                    await action(session)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    traffic.server_errors.append(f"no answer: {type(exc).__name__}")

        async def ticker() -> None:
            while time.monotonic() < deadline:
                on_tick(deadline - time.monotonic())
                await asyncio.sleep(10)

        await asyncio.gather(ticker(), *[worker() for _ in range(concurrency)])
    await asyncio.gather(*traffic.stalled)
    traffic.stalled.clear()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, temporary_postgres("soak") as database_url:
        workdir = Path(folder)
        port = free_port()
        log_path = workdir / "soak.log"
        with log_path.open("w") as log:
            env = base_env(workdir, port, DATABASE_URL=database_url, REDIS_URL=REDIS_URL,
                           RATE_LIMIT_BACKEND="redis", API_KEY=API_KEY,
                           TRUSTED_PROXIES="127.0.0.1/32", RATE_LIMIT_READ="100000/minute",
                           RATE_LIMIT_WRITE="100000/minute", RATE_LIMIT_WEBHOOK="100000/minute",
                           HTTP_BODY_TIMEOUT_SECONDS="5", **SECRETS)
            process = start_bot(workdir, env, log=log)
            try:
                wait_until_ready(port, process)
                traffic = Traffic(f"http://127.0.0.1:{port}", port)
                samples: list[tuple[float, int]] = []
                started = time.monotonic()

                def tick(_: float) -> None:
                    samples.append((time.monotonic() - started, resident_kib(process.pid)))

                await drive(traffic, args.warmup, args.concurrency, tick)
                after_warmup = resident_kib(process.pid)
                warmup_requests = sum(traffic.statuses.values())
                await drive(traffic, args.seconds, args.concurrency, tick)
                await asyncio.sleep(1)
                at_end = resident_kib(process.pid)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        log_text = log_path.read_text()
    total = sum(traffic.statuses.values())
    ordered = sorted(traffic.latencies)
    growth = (at_end - after_warmup) / after_warmup
    print(json.dumps({
        "requests": total, "after_warmup_requests": total - warmup_requests,
        "seconds": args.seconds, "statuses": dict(sorted(traffic.statuses.items())),
        "kinds": dict(traffic.kinds),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        "rss_kib_after_warmup": after_warmup, "rss_kib_at_end": at_end,
        "rss_growth_percent": round(growth * 100, 1),
        "rss_samples_kib": [kib for _, kib in samples],
        "server_errors": traffic.server_errors[:20], "tracebacks": tracebacks(log_text)[:5],
    }, indent=1))
    ok = growth <= 0.10 and not traffic.server_errors and not tracebacks(log_text)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
