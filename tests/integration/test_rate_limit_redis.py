"""The Redis limiter's local decisions: counted in Redis in batches, over-admission within the
bound its module states, and hits decided before an outage counted once Redis answers again."""

from __future__ import annotations

import asyncio
import math

import pytest
import redis.asyncio as redis_asyncio

from edge import rate_limit_redis
from edge.rate_limit import Rate
from edge.rate_limit_redis import FLUSH_SECONDS, LOCAL_SHARE, RedisBackend
from edge.redis_breaker import RedisBreaker, redis_client
from tests.conftest import REDIS_URL, empty_redis
from tests.support.tcp_proxy import TcpProxy

NOW = 1_000_020.0  # a window start for a 60 s window


async def admitted(backend: RedisBackend, rate: Rate, *, local_only: bool) -> int:
    """Hits admitted for one client until the first refusal (or, with `local_only`, until
    one would need Redis)."""
    count = 0
    while True:
        if local_only:
            decision = backend.hit_now("read:10.0.0.1", rate, NOW)
            if decision is None:
                return count
        else:
            decision = await backend.hit("read:10.0.0.1", rate, NOW)
        if not decision.allowed:
            return count
        count += 1


async def counted(client: redis_asyncio.Redis, prefix: str) -> int:
    value = await client.get(f"{prefix}read:10.0.0.1:60:{int(NOW // 60)}")
    return int(value or 0)


async def test_local_hits_reach_redis_in_one_batch_within_a_flush() -> None:
    async with empty_redis() as client:
        backend = RedisBackend(client, prefix="test:")
        rate = Rate(limit=1000, window=60)
        assert (await backend.hit("read:10.0.0.1", rate, NOW)).allowed  # Redis decides
        trips = backend.round_trips
        assert await admitted(backend, rate, local_only=True) == 1000 * LOCAL_SHARE - 1
        assert await counted(client, "test:") == 1  # not yet: they go together
        await asyncio.sleep(FLUSH_SECONDS * 4)
        assert await counted(client, "test:") == 1000 * LOCAL_SHARE
        assert backend.round_trips == trips + 1


@pytest.mark.parametrize("replicas", [1, 2, 3])
async def test_over_admission_stays_within_the_stated_bound(
        replicas: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst schedule: every replica decides all it may locally and flushes nothing, then
    the last one asks Redis until refused, then the others' hits land."""
    monkeypatch.setattr(rate_limit_redis, "FLUSH_SECONDS", 60.0)  # no flush in between
    limit = 20
    rate = Rate(limit=limit, window=60)
    async with empty_redis() as client:
        backends = [RedisBackend(client, prefix="test:") for _ in range(replicas)]
        total = 0
        for backend in backends:  # each learns the key from Redis once
            assert (await backend.hit("read:10.0.0.1", rate, NOW)).allowed
            total += 1
        for backend in backends:
            total += await admitted(backend, rate, local_only=True)
        total += await admitted(backends[-1], rate, local_only=False)
        for backend in backends:
            assert await backend.drain()
        assert await counted(client, "test:") == total  # every admitted hit is counted
        bound = limit + (replicas - 1) * math.floor(LOCAL_SHARE * limit)
        assert total <= bound
        if replicas == 1:
            assert total == limit  # alone, a replica never admits more than the budget
        # Once counted, nobody admits more in this window.
        assert not (await backends[0].hit("read:10.0.0.1", rate, NOW)).allowed


async def test_hits_decided_before_an_outage_are_counted_when_redis_answers_again() -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    database = REDIS_URL.rsplit("/", 1)[1]
    breaker = RedisBreaker(redis_client(f"redis://127.0.0.1:{proxy.port}/{database}", 0.2),
                           timeout=0.2, open_seconds=0.3)
    rate = Rate(limit=1000, window=60)
    async with empty_redis() as client:
        try:
            backend = RedisBackend(breaker.client, prefix="test:", breaker=breaker)
            assert (await backend.hit("read:10.0.0.1", rate, NOW)).allowed
            for _ in range(5):
                assert backend.hit_now("read:10.0.0.1", rate, NOW) is not None
            await proxy.cut()  # before their flush
            await asyncio.sleep(FLUSH_SECONDS * 3)
            assert breaker.state != "closed"
            assert backend.hit_now("read:10.0.0.1", rate, NOW) is None  # Redis away: no more
            assert await counted(client, "test:") == 1
            await proxy.start()
            for _ in range(100):  # the kept hits are the probe that closes the breaker
                if await counted(client, "test:") == 6:
                    break
                await asyncio.sleep(0.05)
            assert await counted(client, "test:") == 6
            assert breaker.state == "closed"
            assert backend.hit_now("read:10.0.0.1", rate, NOW) is not None  # local again
        finally:
            await proxy.cut()
            await breaker.aclose()


async def test_one_replica_admits_exactly_its_budget_past_the_flush_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """More keys with local hits than one round trip flushes (MAX_FLUSH, here 1): a key asked
    about still has its own local hits counted before Redis decides on it."""
    monkeypatch.setattr(rate_limit_redis, "MAX_FLUSH", 1)
    monkeypatch.setattr(rate_limit_redis, "FLUSH_SECONDS", 60.0)  # no timed flush meanwhile
    rate = Rate(limit=10, window=60)
    async with empty_redis() as client:
        backend = RedisBackend(client, prefix="test:")
        assert (await backend.hit("read:other", rate, NOW)).allowed
        assert (await backend.hit("read:10.0.0.1", rate, NOW)).allowed
        assert backend.hit_now("read:other", rate, NOW) is not None  # first on the flush list
        local = await admitted(backend, rate, local_only=True)
        decisions = await asyncio.gather(*[backend.hit("read:10.0.0.1", rate, NOW)
                                           for _ in range(20)])
        total = 1 + local + sum(decision.allowed for decision in decisions)
        assert local > 0
        assert total == rate.limit
        assert await backend.drain()
        assert await counted(client, "test:") == total


async def test_asks_behind_those_of_callers_gone_are_still_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole batch's worth of asks (MAX_BATCH, here 2) whose callers went away does not
    leave the ask behind them waiting for some later request."""
    monkeypatch.setattr(rate_limit_redis, "MAX_BATCH", 2)
    rate = Rate(limit=100, window=60)
    async with empty_redis() as client:
        backend = RedisBackend(client, prefix="test:")
        gone = [asyncio.create_task(backend.hit(f"read:gone{i}", rate, NOW)) for i in range(2)]
        waiting = asyncio.create_task(backend.hit("read:10.0.0.1", rate, NOW))
        await asyncio.sleep(0)  # all three have asked; the batch leaves on the next turn
        for task in gone:
            task.cancel()
        decision = await asyncio.wait_for(waiting, 2.0)
        assert decision.allowed
