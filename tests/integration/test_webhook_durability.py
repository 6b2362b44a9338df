"""Nothing is lost: a database outage answers 503 + Retry-After, and the retry applies once.
Replicas share the replay guard and premium invalidations through the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

import api
from members.premium import PremiumCache, PremiumInvalidator
from store import migrate
from store.database import Database
from store.models import Reflection, WebhookDelivery
from tests.support.tcp_proxy import TcpProxy
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    encode,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

REFLECTIONS_PATH, REFLECTIONS_SECRET = PATHS["reflections"][0], SECRETS[
    "APP_REFLECTIONS_WEBHOOK_SECRET"]


def reflection(reflection_id: str) -> bytes:
    return encode({"action": "upsert", "reflection_id": reflection_id, "user_id": "u1",
                   "text": "kept"})


async def count(database: Database, model: type[Any]) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_database_outage_is_503_then_the_retry_applies_exactly_once(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        postgres_url: str) -> None:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)
    database = Database(through_proxy)
    direct = Database(postgres_url)
    try:
        async with direct.engine.begin() as connection:  # start from an empty table
            await connection.exec_driver_sql("DELETE FROM reflections")
            await connection.exec_driver_sql("DELETE FROM webhook_deliveries")
        client = await aiohttp_client(api.create_app(make_settings(**settings_overrides()),
                                                     database=database))
        body = reflection("during-outage")
        headers = standard_headers(REFLECTIONS_SECRET, body, msg_id="msg_outage")

        await proxy.cut()
        refused = await client.post(REFLECTIONS_PATH, data=body, headers=headers)
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "5"
        assert (await refused.json())["detail"] == "temporarily unavailable, retry later"
        assert await count(direct, Reflection) == 0

        await proxy.start()
        retried = await client.post(REFLECTIONS_PATH, data=body, headers=headers)
        assert (await retried.json())["status"] == "processed"
        again = await client.post(REFLECTIONS_PATH, data=body, headers=headers)
        assert await again.json() == {"status": "duplicate"}
        assert await count(direct, Reflection) == 1
        assert await count(direct, WebhookDelivery) == 1
    finally:
        await proxy.cut()
        await database.dispose()
        await direct.dispose()


@pytest.fixture
def two_sqlite_replicas(tmp_path: Path) -> list[str]:
    """Two replicas that share nothing but Redis (each with its own embedded database)."""
    urls = [f"sqlite+aiosqlite:///{tmp_path / f'replica{i}.db'}" for i in (1, 2)]
    for url in urls:
        migrate.upgrade(url)
    return urls


async def test_replicas_share_the_replay_guard_through_redis(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        redis_url: str, two_sqlite_replicas: list[str]) -> None:
    settings = make_settings(**settings_overrides(redis_url=redis_url))
    clients = [await aiohttp_client(api.create_app(settings.model_copy(
        update={"database_url": url}))) for url in two_sqlite_replicas]
    body = reflection("shared")
    headers = standard_headers(REFLECTIONS_SECRET, body)
    first = await clients[0].post(REFLECTIONS_PATH, data=body, headers=headers)
    assert (await first.json())["status"] == "processed"
    second = await clients[1].post(REFLECTIONS_PATH, data=body, headers=headers)
    assert await second.json() == {"status": "duplicate"}


async def test_redis_down_falls_back_to_the_database_guard(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    settings = make_settings(**settings_overrides(redis_url="redis://127.0.0.1:1/0"))
    client = await aiohttp_client(api.create_app(settings, database=database))
    body = reflection("no-redis")
    headers = standard_headers(REFLECTIONS_SECRET, body)
    assert (await (await client.post(REFLECTIONS_PATH, data=body, headers=headers)).json())[
        "status"] == "processed"
    assert await (await client.post(REFLECTIONS_PATH, data=body, headers=headers)).json() == \
        {"status": "duplicate"}


async def test_premium_invalidation_reaches_every_replica(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        redis_url: str, database: Database) -> None:
    settings = make_settings(**settings_overrides(redis_url=redis_url))
    caches = [PremiumCache(), PremiumCache()]
    clients = [await aiohttp_client(api.create_app(
        settings, database=database, premium=PremiumInvalidator(cache))) for cache in caches]
    for cache in caches:
        cache.set("user-7", True)
    body = encode({"user_id": "user-7"})
    secret = SECRETS["PREMIUM_INVALIDATE_WEBHOOK_SECRET"]
    response = await clients[0].post(PATHS["premium-invalidate"][0], data=body,
                                     headers=standard_headers(secret, body))
    assert response.status == 200
    for _ in range(100):
        if caches[1].get("user-7") is None:
            break
        await asyncio.sleep(0.02)
    assert caches[0].get("user-7") is None
    assert caches[1].get("user-7") is None, "the other replica kept a stale premium status"
