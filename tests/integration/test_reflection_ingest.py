"""The reflections webhook gives the same answers and leaves the same rows on both paths:
SQLite's general one (a session, the effect in Python) and PostgreSQL's one statement per
delivery (store/webhook_ingest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import api
from store.database import Database
from store.models import AuditLog, Reflection, User, WebhookDelivery
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
