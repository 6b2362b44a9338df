"""The rate limiter: exact decisions with a fake clock, bounded memory, shared Redis budgets,
failing open, and its place in the middleware stack."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import api
from edge.rate_limit import MemoryBackend, Rate, RateLimiter, decide
from edge.rate_limit_redis import RedisBackend
from store.database import Database
from tests.conftest import empty_redis
from tests.support.tcp_proxy import TcpProxy
from utils.config import Settings

RATE = Rate(limit=3, window=60)


class FakeClock:
    def __init__(self, now: float = 1_000_020.0) -> None:  # 1_000_020 % 60 == 0
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        yield MemoryBackend()
        return
    async with empty_redis() as client:
        yield RedisBackend(client, prefix="test:")


async def test_exact_sequence_at_window_edges(backend: Any) -> None:
    clock = FakeClock()
    limiter = RateLimiter({"read": RATE}, backend, clock=clock)
    allowed = [(await limiter.check("read", "ip"))  for _ in range(4)]
    assert [d.allowed for d in allowed if d] == [True, True, True, False]
    assert [d.remaining for d in allowed if d] == [2, 1, 0, 0]
    assert allowed[3] is not None
    assert allowed[3].reset_after == 60

    clock.now += 59.999  # still the same window
    assert not (await limiter.check("read", "ip")).allowed  # type: ignore[union-attr]
    clock.now += 0.001  # new window: the previous 3 weigh 3 * (1 - 0/60) = 3
    assert not (await limiter.check("read", "ip")).allowed  # type: ignore[union-attr]
    clock.now += 20  # weight 2/3: 3 * 2/3 = 2 used, one more fits
    assert (await limiter.check("read", "ip")).allowed  # type: ignore[union-attr]
    assert not (await limiter.check("read", "ip")).allowed  # type: ignore[union-attr]
    clock.now += 120  # two windows later nothing is remembered
    assert [(await limiter.check("read", "ip")).allowed for _ in range(4)] == [  # type: ignore[union-attr]
        True, True, True, False]


async def test_classes_and_clients_have_separate_budgets(backend: Any) -> None:
    limiter = RateLimiter({"read": RATE, "write": Rate(1, 60)}, backend, clock=FakeClock())
    for _ in range(3):
        assert (await limiter.check("read", "a")).allowed  # type: ignore[union-attr]
    assert not (await limiter.check("read", "a")).allowed  # type: ignore[union-attr]
    assert (await limiter.check("write", "a")).allowed  # type: ignore[union-attr]
    assert (await limiter.check("read", "b")).allowed  # type: ignore[union-attr]


def test_decide_is_pure_arithmetic() -> None:
    assert decide(Rate(10, 60), previous=10, current=0, elapsed=30).remaining == 4
    refused = decide(Rate(10, 60), previous=10, current=5, elapsed=30)
    assert not refused.allowed
    # One more fits once the previous window weighs 0.4 (4 + 5 + 1 = 10): at 36 s, 6 s away.
    assert refused.reset_after == 6


async def test_memory_stays_bounded_under_a_million_addresses() -> None:
    backend = MemoryBackend(max_keys=10_000)
    clock = FakeClock()
    limiter = RateLimiter({"read": RATE}, backend, clock=clock)
    for index in range(1_000_000):
        await backend.hit(f"read:{index}", RATE, clock.now)
    assert len(backend) == 10_000
    assert (await limiter.check("read", "999999")).remaining == 1  # type: ignore[union-attr]


async def test_two_apps_share_one_budget_through_redis(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, redis_url: str) -> None:
    settings = make_settings(rate_limit_backend="redis", redis_url=redis_url,
                             rate_limit_read="5/minute")
    clients = [await aiohttp_client(api.create_app(settings, database=database))
               for _ in range(2)]
    statuses = [(await clients[index % 2].get("/missing")).status for index in range(8)]
    assert statuses == [404] * 5 + [429] * 3


async def test_redis_stopping_mid_test_fails_open(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, redis_url: str) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    settings = make_settings(rate_limit_backend="redis", rate_limit_read="100/minute",
                             redis_url=f"redis://127.0.0.1:{proxy.port}/15")
    app = api.create_app(settings, database=database)
    client = await aiohttp_client(app)
    assert (await client.get("/missing")).status == 404
    await proxy.cut()
    limiter = app[api.RATE_LIMITER]
    # Far below its budget the client may still be decided locally until the next round
    # trip (a flush within 50 ms) finds Redis gone; every request is served meanwhile.
    for _ in range(100):
        assert (await client.get("/missing")).status == 404
        if limiter.backend_errors:
            break
        await asyncio.sleep(0.01)
    errors = limiter.backend_errors
    assert errors > 0
    responses = [await client.get("/missing") for _ in range(3)]
    assert [response.status for response in responses] == [404, 404, 404]
    assert limiter.backend_errors == errors + 3  # each one failed open, none decided here
    assert "RateLimit" not in responses[0].headers


async def test_429_carries_request_id_headers_and_the_error_shape(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    clock = FakeClock()
    settings = make_settings(rate_limit_health="2/minute")
    client = await aiohttp_client(api.create_app(settings, database=database, clock=clock))
    ok = [await client.get("/health") for _ in range(2)]
    assert ok[0].headers["RateLimit-Policy"] == '"health";q=2;w=60'
    assert ok[0].headers["RateLimit"] == '"health";r=1;t=0'
    refused = await client.get("/health", headers={"X-Request-ID": "trace-429"})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-Request-ID"] == "trace-429"
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert await refused.json() == {"detail": "rate limit exceeded, retry later",
                                    "request_id": "trace-429"}
    # Another class is untouched by the health budget.
    assert (await client.get("/missing")).status == 404


async def test_concurrent_redis_decisions_share_round_trips_and_stay_exact() -> None:
    async with empty_redis() as client:
        backend = RedisBackend(client, prefix="test:")
        clock = FakeClock()
        limiter = RateLimiter({"read": Rate(limit=30, window=60)}, backend, clock=clock)
        decisions = await asyncio.gather(*[limiter.check("read", "10.0.0.1")
                                           for _ in range(50)])
        assert sum(1 for decision in decisions if decision and decision.allowed) == 30
        assert limiter.refusals == 20
        assert backend.round_trips < 10  # 50 decisions, batched
        other = await limiter.check("read", "10.0.0.2")  # alone: its own budget
        assert other is not None
        assert other.allowed


async def test_under_load_redis_decisions_far_from_the_limit_need_not_wait() -> None:
    """With a round trip in flight, hits far below the budget are decided locally and still
    counted in Redis; near the budget every decision waits for Redis, so none is over."""
    async with empty_redis() as client:
        backend = RedisBackend(client, prefix="test:")
        limiter = RateLimiter({"read": Rate(limit=40, window=60)}, backend, clock=FakeClock())
        assert (await limiter.check("read", "10.0.0.1")) is not None  # Redis has answered once
        waves = []
        for _ in range(6):  # overlapping waves: each starts while the last is in flight
            waves.append(asyncio.ensure_future(asyncio.gather(
                *[limiter.check("read", "10.0.0.1") for _ in range(10)])))
            await asyncio.sleep(0)
        decisions = [decision for wave in waves for decision in await wave]
        await backend.drain()  # the hits counted behind land
        allowed = 1 + sum(1 for decision in decisions if decision and decision.allowed)
        assert allowed == 40
        assert backend.local_decisions > 0
        counted = await client.get(f"test:read:10.0.0.1:60:{int(FakeClock()() // 60)}")
        assert int(counted) == 40
