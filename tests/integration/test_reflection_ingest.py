"""The reflections webhook gives the same answers and leaves the same rows on both paths:
SQLite's general one (a session, the effect in Python) and PostgreSQL's one statement per
delivery (store/webhook_ingest.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

import api
from store import webhook_ingest
from store.database import Database
from store.models import AuditLog, Reflection, User, WebhookDelivery
from store.webhook_deliveries import DeliveryRecord
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    encode,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

PATH, VARIABLE = PATHS["reflections"]

# (delivery id, payload, expected status, expected body)
SCRIPT: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
    ("d1", {"action": "upsert", "reflection_id": "r1", "user_id": "alice", "text": "v1"},
     200, {"status": "processed", "action": "upserted"}),
    ("d2", {"action": "upsert", "reflection_id": "r1", "user_id": "alice", "text": "v2"},
     200, {"status": "processed", "action": "upserted"}),
    # A replay of d1 changes nothing: the text stays v2.
    ("d1", {"action": "upsert", "reflection_id": "r1", "user_id": "alice", "text": "v1"},
     200, {"status": "duplicate"}),
    ("d3", {"action": "upsert", "reflection_id": "r1", "user_id": "mallory", "text": "mine"},
     409, {}),
    # Refused deliveries are not recorded: the same delivery again is refused again.
    ("d3", {"action": "upsert", "reflection_id": "r1", "user_id": "mallory", "text": "mine"},
     409, {}),
    ("d4", {"action": "revoke", "reflection_id": "r1", "user_id": "mallory"}, 409, {}),
    ("d5", {"action": "revoke", "reflection_id": "nowhere", "user_id": "alice"},
     200, {"status": "processed", "action": "revoked", "found": False}),
    ("d6", {"action": "upsert", "reflection_id": "r2", "user_id": "bob", "text": "hello"},
     200, {"status": "processed", "action": "upserted"}),
    ("d7", {"action": "revoke", "reflection_id": "r1", "user_id": "alice"},
     200, {"status": "processed", "action": "revoked", "found": True}),
    ("d7", {"action": "revoke", "reflection_id": "r1", "user_id": "alice"},
     200, {"status": "duplicate"}),
]


async def test_the_same_answers_and_rows_on_both_backends(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    app = api.create_app(make_settings(**settings_overrides()), database=database)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    for delivery_id, payload, status, body in SCRIPT:
        raw = encode(payload)
        response = await client.post(PATH, data=raw, headers=standard_headers(
            SECRETS[VARIABLE], raw, msg_id=delivery_id))
        answer = await response.json()
        assert response.status == status, (delivery_id, answer)
        if status == 200:
            assert answer == body, delivery_id

    async with database.session() as session:
        reflections = {row.external_id: (row.user_id, row.text, row.revoked_at is not None)
                       for row in await session.scalars(select(Reflection))}
        users = set(await session.scalars(select(User.id)))
        deliveries = set(await session.scalars(select(WebhookDelivery.delivery_id)))
        events = [(row.event, row.details.get("delivery_id")) for row in await session.scalars(
            select(AuditLog).where(AuditLog.event.like("webhook.%")).order_by(AuditLog.id))]
    assert reflections == {"r1": ("alice", "", True), "r2": ("bob", "hello", False)}
    assert users == {"alice", "bob"}  # mallory's refused deliveries left no profile
    assert deliveries == {"d1", "d2", "d5", "d6", "d7"}
    assert events == [
        ("webhook.accepted", "d1"), ("webhook.accepted", "d2"), ("webhook.duplicate", "d1"),
        ("webhook.rejected", None), ("webhook.rejected", None), ("webhook.rejected", None),
        ("webhook.accepted", "d5"), ("webhook.accepted", "d6"), ("webhook.accepted", "d7"),
        ("webhook.duplicate", "d7")]


async def test_a_burst_in_flight_at_once_is_applied_once_each(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixty deliveries, each sent twice at once, and five refused ones among them: on
    PostgreSQL they travel in batches (counted), with the same outcome as one by one."""
    batches: list[int] = []
    share_many = webhook_ingest._share_many

    async def counted(database: Database, calls: Any) -> Any:
        batches.append(len(calls))
        return await share_many(database, calls)

    monkeypatch.setattr(webhook_ingest, "_share_many", counted)
    app = api.create_app(make_settings(**settings_overrides(
        rate_limit_webhook="1000/minute")), database=database)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)

    async def send(delivery_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raw = encode(payload)
        response = await client.post(PATH, data=raw, headers=standard_headers(
            SECRETS[VARIABLE], raw, msg_id=delivery_id))
        return response.status, await response.json()

    owned = {"action": "upsert", "reflection_id": "r-owned", "user_id": "alice", "text": "a"}
    assert (await send("first", owned))[0] == 200
    burst = [(f"d{i}", {"action": "upsert", "reflection_id": f"r{i}", "user_id": f"u{i % 7}",
                        "text": f"t{i}"}) for i in range(60)]
    thefts = [(f"m{i}", {**owned, "user_id": "mallory", "text": "mine"}) for i in range(5)]
    answers = await asyncio.gather(*[send(*delivery) for delivery in burst + burst + thefts])

    statuses = [status for status, _body in answers]
    bodies = [body.get("status") for _status, body in answers]
    assert statuses.count(200) == 120
    assert statuses.count(409) == 5
    assert bodies.count("processed") == 60
    assert bodies.count("duplicate") == 60
    async with database.session() as session:
        reflections = {row.external_id: (row.user_id, row.text)
                       for row in await session.scalars(select(Reflection))}
        users = set(await session.scalars(select(User.id)))
        deliveries = await session.scalar(select(func.count()).select_from(WebhookDelivery))
        events = Counter(await session.scalars(select(AuditLog.event)))
    assert reflections == {"r-owned": ("alice", "a")} | {
        f"r{i}": (f"u{i % 7}", f"t{i}") for i in range(60)}
    assert users == {"alice"} | {f"u{i}" for i in range(7)}
    assert deliveries == 61
    assert (events["webhook.accepted"], events["webhook.duplicate"],
            events["webhook.rejected"]) == (61, 60, 5)
    if database.backend == "postgresql":
        assert max(batches, default=0) > 1, "no batch was formed"


def record(delivery_id: str) -> DeliveryRecord:
    return DeliveryRecord("reflections", delivery_id, "0" * 64, {})


async def test_dispose_answers_every_waiting_call_and_opens_nothing_after(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shutdown while deliveries wait on a slow database: the handlers are cancelled (the
    runner's grace ran out), dispose() closes the batch and the pool, and nothing reopens one
    to write afterwards."""
    database = Database(postgres_url)
    share_one = webhook_ingest._share_one

    async def slow_one(database: Database, call: Any) -> Any:
        async with database.driver_connection() as connection:
            await connection.execute("SELECT pg_sleep(0.3)")
        return await share_one(database, call)

    monkeypatch.setattr(webhook_ingest, "_share_one", slow_one)
    callers = [asyncio.create_task(webhook_ingest.share_reflection(
        database, record(f"closing-{i}"), external_id="closing-r", user_id="closing-u",
        text=f"t{i}")) for i in range(4)]  # one reflection: each call runs alone, in turn
    await asyncio.sleep(0.1)
    for caller in callers:
        caller.cancel()
    await database.dispose()
    await asyncio.sleep(0.5)  # a call still queued would now open a pool and write
    assert database._driver is not None
    assert database._driver._pool is None
    with pytest.raises(ConnectionError):
        await webhook_ingest.share_reflection(database, record("after"), external_id="x",
                                              user_id="u", text="t")
    checker = Database(postgres_url)
    try:
        async with checker.session() as session:
            written = await session.scalar(select(func.count()).select_from(WebhookDelivery)
                                           .where(WebhookDelivery.delivery_id.like("closing-%")))
    finally:
        await checker.dispose()
    assert written is not None
    assert written <= 1  # at most the one out when the handlers went; none after dispose


async def test_sqlalchemy_url_options_do_not_reach_the_driver_pool(postgres_url: str) -> None:
    """SQLAlchemy's own statement-cache options in DATABASE_URL are not asyncpg's: the driver
    pool leaves them out instead of failing every delivery."""
    database = Database(postgres_url + "?prepared_statement_cache_size=0")
    try:
        written = await webhook_ingest.share_reflection(
            database, record("url-options"), external_id="url-options", user_id="u-url",
            text="t")
    finally:
        await database.dispose()
    assert (written.new, written.written) == (True, True)
