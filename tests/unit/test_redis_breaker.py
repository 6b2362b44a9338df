"""The Redis circuit breaker's states, timings and log lines (issue 14, finding 7)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from structlog.testing import capture_logs

from edge.redis_breaker import RedisBreaker, RedisUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, timeout: float = 0.05) -> RedisBreaker:
    client = redis_asyncio.Redis.from_url("redis://127.0.0.1:1/0")  # never contacted here
    return RedisBreaker(client, timeout=timeout, open_seconds=5.0, clock=clock)


async def ok() -> str:
    return "answer"


async def refused() -> str:
    raise redis_asyncio.ConnectionError("refused")


async def silent() -> str:
    await asyncio.sleep(10)
    return "never"


async def test_a_failure_opens_the_circuit_and_calls_are_skipped_at_once() -> None:
    clock = Clock()
    circuit = breaker(clock)
    assert await circuit.run(ok) == "answer"
    with pytest.raises(RedisUnavailable):
        await circuit.run(refused)
    assert circuit.state == "open"
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "answer"

    for _ in range(100):
        with pytest.raises(RedisUnavailable):
            await circuit.run(counted)
    assert calls == 0
    assert circuit.skipped == 100


async def test_a_silent_redis_costs_one_timeout_then_nothing() -> None:
    clock = Clock()
    circuit = breaker(clock, timeout=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RedisUnavailable):
        await circuit.run(silent)
    assert 0.04 < loop.time() - started < 0.5
    started = loop.time()
    with pytest.raises(RedisUnavailable):
        await circuit.run(silent)
    assert loop.time() - started < 0.01


async def test_after_the_pause_one_probe_decides() -> None:
    clock = Clock()
    circuit = breaker(clock)
    with pytest.raises(RedisUnavailable):
        await circuit.run(refused)
    clock.now += 5.1
    gate = asyncio.Event()

    async def slow_ok() -> str:
        await gate.wait()
        return "answer"

    probe = asyncio.create_task(circuit.run(slow_ok))
    await asyncio.sleep(0)
    assert circuit.state == "half_open"
    with pytest.raises(RedisUnavailable):  # the others still skip while the probe runs
        await circuit.run(ok)
    gate.set()
    assert await probe == "answer"
    assert circuit.state == "closed"
    assert await circuit.run(ok) == "answer"


async def test_a_failed_probe_opens_for_another_pause() -> None:
    clock = Clock()
    circuit = breaker(clock)
    with pytest.raises(RedisUnavailable):
        await circuit.run(refused)
    clock.now += 5.1
    with pytest.raises(RedisUnavailable):
        await circuit.run(refused)
    assert circuit.state == "open"
    clock.now += 4.0
    with pytest.raises(RedisUnavailable):
        await circuit.run(ok)  # not yet
    clock.now += 1.2
    assert await circuit.run(ok) == "answer"


async def test_one_log_line_when_redis_goes_and_one_when_it_comes_back() -> None:
    clock = Clock()
    circuit = breaker(clock)
    changes: list[str] = []
    circuit.on_change(changes.append)
    with capture_logs() as logs:
        for _ in range(50):
            with pytest.raises(RedisUnavailable):
                await circuit.run(refused)
        for _ in range(5):  # five failed probes, 5 s apart: still one outage
            clock.now += 5.1
            with pytest.raises(RedisUnavailable):
                await circuit.run(refused)
        clock.now += 5.1
        for _ in range(50):
            await circuit.run(ok)
    events: list[dict[str, Any]] = [entry for entry in logs
                                    if entry["event"].startswith("redis")]
    assert [entry["event"] for entry in events] == [
        "redis unavailable: circuit open, doing without it", "redis answers again: circuit closed"]
    assert changes[0] == "open"
    assert changes[-1] == "closed"
    assert circuit.opened == 1
