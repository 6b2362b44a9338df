"""The edge: server CPU per request for probes, refusals and operator reads, against bare
aiohttp in the same run; then rate-limit decisions per second for each backend.

wrk (-t1 -c16) drives the servers; each figure is the server's own CPU time per request (see
bench/cpu.py), so a slow client cannot flatter it. Goals (issue 15):

- GET /health: bare/ours >= 0.70
- a 404, 405, 401 or 429, access line included: <= 2 bare requests of CPU
- GET /api/observability (valid key): <= 3.5 bare requests
- a Redis-checked request: <= 1.5 bare requests
- Redis decisions: >= 10,000/s with 32 concurrent clients

    .venv/bin/python -m bench.edge [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import redis.asyncio as redis_asyncio

from bench.cpu import Figure, Servers, Target, measure, print_figures
from edge.rate_limit import MemoryBackend, Rate
from edge.rate_limit_redis import LOCAL_SHARE, RedisBackend

BENCH_KEY = "bench-service-key-0123456789"
REDIS_URL = "redis://127.0.0.1:6379/14"
HUGE = "100000000/minute"

# Label -> (goal, comparison): "in_bare <= goal" or "of_bare >= goal".
GOALS: dict[str, tuple[str, float]] = {
    "GET /health": ("of_bare", 0.70),
    "GET /no-such-page (404)": ("in_bare", 2.0),
    "POST /health (405)": ("in_bare", 2.0),
    "GET /api/observability, no key (401)": ("in_bare", 2.0),
    "GET /api/observability, wrong keys, locked out (429)": ("in_bare", 2.0),
    "POST /api/v1/me, over budget (429)": ("in_bare", 2.0),
    "GET /api/observability (valid key)": ("in_bare", 3.5),
    "GET /health, Redis limiter": ("in_bare", 1.5),
}


def targets(with_redis: bool) -> list[Target]:
    key = f"X-Api-Key: {BENCH_KEY}"
    found = [
        Target("GET /health", "/health"),
        Target("GET /no-such-page (404)", "/no-such-page"),
        Target("POST /health (405)", "/health", method="POST"),
        # A key-less scan is a plain 401; a run of wrong keys from one address is locked out
        # after ten (each of those ten audited), so the figure is the lockout's 429. On a
        # process of its own: the lockout would refuse the valid key from that address too.
        Target("GET /api/observability, no key (401)", "/api/observability"),
        Target("GET /api/observability, wrong keys, locked out (429)", "/api/observability",
               ("X-Api-Key: wrong",), server="lockout"),
        Target("POST /api/v1/me, over budget (429)", "/api/v1/me", method="POST"),
        Target("GET /api/observability (valid key)", "/api/observability", (key,)),
        Target("GET /metrics (valid key)", "/metrics", (key,)),
    ]
    if with_redis:
        found.append(Target("GET /health, Redis limiter", "/health", server="redis"))
    return found


def verdict(figure: Figure) -> str:
    goal = GOALS.get(figure.label)
    if goal is None:
        return ""
    kind, bound = goal
    if kind == "of_bare":
        met = figure.of_bare >= bound
        return f"bare/ours {figure.of_bare:.3f} (goal >= {bound:.2f}: " \
               f"{'met' if met else 'NOT met'})"
    met = figure.in_bare <= bound
    return f"{figure.in_bare:.3f} bare (goal <= {bound}: {'met' if met else 'NOT met'})"


async def redis_available() -> bool:
    client = redis_asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
        return True
    except (OSError, redis_asyncio.RedisError):
        return False
    finally:
        await client.aclose()


async def decisions_per_second(backend: object, count: int, concurrency: int) -> float:
    """Decisions/s from `concurrency` concurrent clients (each its own key space)."""
    rate = Rate(limit=10**9, window=60)
    per_client = count // concurrency

    async def client(number: int) -> None:
        for index in range(per_client):
            await backend.hit(f"read:{number}:{index % 100}", rate,  # type: ignore[attr-defined]
                              time.time())

    started = time.perf_counter()
    await asyncio.gather(*[client(number) for number in range(concurrency)])
    return per_client * concurrency / (time.perf_counter() - started)


async def rate_limit_figures(say: Callable[[str], None], concurrency: int = 32) -> dict[str, float]:
    found = {"memory": await decisions_per_second(MemoryBackend(), 200_000, concurrency)}
    say(f"rate-limit decisions/s, {concurrency} concurrent clients: memory "
        f"{found['memory']:,.0f}")
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        for label, share in (("redis", LOCAL_SHARE), ("redis_exact", 0.0)):
            backend = RedisBackend(client, prefix="bench:", local_share=share)
            found[label] = await decisions_per_second(backend, 40_000, concurrency)
            await backend.drain()
            ok = found[label] >= 10_000
            say(f"rate-limit decisions/s, {concurrency} concurrent clients: redis  "
                f"{found[label]:,.0f} (goal >= 10,000: {'met' if ok else 'NOT met'}; "
                f"{backend.round_trips:,} round trips, "
                f"{backend.local_decisions / 40_000:.0%} decided without waiting"
                f"{', every decision waits' if not share else ''})")
        await client.flushdb()
    except (OSError, redis_asyncio.RedisError) as exc:
        say(f"rate-limit decisions/s: redis unavailable ({type(exc).__name__})")
    finally:
        await client.aclose()
    return found


def edge_figures(*, seconds: float, rounds: int,
                 say: Callable[[str], None] = print) -> list[Figure]:
    with_redis = asyncio.run(redis_available())
    servers = Servers()
    try:
        servers.start_bare()
        common = {"API_KEY": BENCH_KEY, "RATE_LIMIT_HEALTH": HUGE, "RATE_LIMIT_READ": HUGE,
                  "RATE_LIMIT_WRITE": "1/hour"}
        servers.start_project("project", **common)
        servers.start_project("lockout", **common)
        if with_redis:
            servers.start_project("redis", RATE_LIMIT_BACKEND="redis", REDIS_URL=REDIS_URL,
                                  **common)
        else:
            say("Redis is not answering: the Redis-checked request is left out")
        figures = measure(servers, targets(with_redis), rounds=rounds, seconds=seconds,
                          say=say)
    finally:
        servers.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = edge_figures(seconds=args.seconds, rounds=args.rounds)
    print(f"server CPU per request under wrk -t1 -c16, {args.rounds} rounds x {args.seconds} s,"
          " medians")
    print_figures(figures)
    for figure in figures:
        if verdict(figure):
            print(f"  {figure.label}: {verdict(figure)}")
    asyncio.run(rate_limit_figures(print))


if __name__ == "__main__":
    main()
