"""Redis silent or down (issue 14, finding 7): no 5xx, the breaker opens after one short
timeout and requests go back under 50 ms, one log line per change of state; the replay guard
falls back to the database and the premium cache to the database; Redis back: the breaker
closes and shared state works again."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

import api
from members.premium import PremiumCache, PremiumInvalidator
from store.database import Database
from tests.conftest import REDIS_URL
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    encode,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

Client = TestClient[web.Request, web.Application]
PATH, SECRET = PATHS["reflections"][0], SECRETS["APP_REFLECTIONS_WEBHOOK_SECRET"]
TIMEOUT, PAUSE = 0.25, 1.0


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    host_port = redis_url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    relay = TcpProxy(host, int(port))
    await relay.start()
    yield relay
    await relay.cut()


@pytest.fixture
def sqlite_database(tmp_path: Path, sqlite_template: Path) -> Database:
    shutil.copyfile(sqlite_template, tmp_path / "bot.db")
    return Database(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")


@pytest.fixture
async def setup(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                proxy: TcpProxy, sqlite_database: Database
                ) -> AsyncIterator[tuple[Client, PremiumCache]]:
    database_number = REDIS_URL.rsplit("/", 1)[1]
    settings = make_settings(**settings_overrides(
        redis_url=f"redis://127.0.0.1:{proxy.port}/{database_number}",
        rate_limit_backend="redis", rate_limit_webhook="100000/minute",
        rate_limit_health="100000/minute", redis_timeout_seconds=TIMEOUT,
        redis_breaker_seconds=PAUSE))
    cache = PremiumCache()
    client = await aiohttp_client(api.create_app(settings, database=sqlite_database,
                                                 premium=PremiumInvalidator(cache)))
    yield client, cache
    await sqlite_database.dispose()


counter = iter(range(10**9))


async def deliver(client: Client, msg_id: str | None = None) -> tuple[int, float, str]:
    body = encode({"action": "upsert", "reflection_id": f"r{next(counter)}", "user_id": "u1",
                   "text": "x"})
    headers = standard_headers(SECRET, body, msg_id=msg_id)
    started = time.perf_counter()
    response = await client.post(PATH, data=body, headers=headers)
    outcome = (await response.json()).get("status", "")
    return response.status, time.perf_counter() - started, outcome


def redis_events(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["event"] for entry in logs if entry.get("log_level") in ("warning", "error")
            or entry["event"].startswith("redis")]


@pytest.mark.parametrize("fault", ["silent", "down"])
async def test_a_redis_fault_costs_one_short_timeout_and_one_log_line(
        setup: tuple[Client, PremiumCache], proxy: TcpProxy, fault: str) -> None:
    client, _ = setup
    for _ in range(5):
        assert (await deliver(client))[0] == 200
    with capture_logs() as logs:
        if fault == "silent":
            proxy.stall()
        else:
            await proxy.cut()
        results = [await deliver(client) for _ in range(60)]
        statuses = {status for status, _, _ in results}
        latencies = [seconds for _, seconds, _ in results]
        assert statuses == {200}
        print(fault, "first", [round(s * 1000, 1) for s in latencies[:4]], "p50 after",
              round(statistics.median(latencies[5:]) * 1000, 2), "ms")
        assert max(latencies) < TIMEOUT * 3 + 0.5  # one short timeout, at most
        assert statistics.median(latencies[5:]) < 0.05  # the breaker is open: Redis skipped
        # The replay guard falls back to the database's unique delivery id.
        again = [await deliver(client, msg_id="msg_fault_dup") for _ in range(2)]
        assert [outcome for _, _, outcome in again] == ["processed", "duplicate"]
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["checks"]["redis"] == "degraded"
        # Redis comes back: the next probe (one per pause) closes the breaker.
        if fault == "silent":
            proxy.resume()
        else:
            await proxy.start()
        await asyncio.sleep(PAUSE + 0.2)
        results = [await deliver(client) for _ in range(5)]
        assert {status for status, _, _ in results} == {200}
        assert (await (await client.get("/readyz")).json())["checks"]["redis"] == "ok"
    assert redis_events(logs) == ["redis unavailable: circuit open, doing without it",
                                  "redis answers again: circuit closed"], logs


async def test_the_premium_cache_reads_the_database_while_redis_is_away(
        setup: tuple[Client, PremiumCache], proxy: TcpProxy) -> None:
    client, cache = setup
    await asyncio.sleep(0.3)  # the listener subscribes
    cache.set("user-1", True)
    assert cache.get("user-1") is True
    await proxy.cut()
    await deliver(client)  # any Redis use finds it gone
    await asyncio.sleep(0.1)
    assert cache.get("user-1") is None  # invalidations cannot arrive: no cached answers
    cache.set("user-1", True)
    assert cache.get("user-1") is None
    await proxy.start()
    for _ in range(40):  # the listener probes once per pause and subscribes again
        await asyncio.sleep(0.1)
        cache.set("user-1", True)
        if cache.get("user-1") is True:
            break
    assert cache.get("user-1") is True
