"""The replay guard of webhooks: one row per (webhook, delivery id), written with the effect."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.database import insert_for, statement
from store.models import UTCDateTime, WebhookDelivery, utcnow
from utils.logging import current_request_id

# Core statements on the table: no ORM unit of work per delivery.
_DELIVERIES = cast(Table, WebhookDelivery.__table__)


async def record_delivery(session: AsyncSession, *, webhook: str, delivery_id: str,
                          body_sha256: str) -> bool:
    """True when this delivery is new; False for a replay (nothing written).

    INSERT .. ON CONFLICT DO NOTHING RETURNING id, one round trip: the unique key is the replay
    guard, and a concurrent twin waits for the first transaction and then finds the row, on
    both backends.
    """
    inserted = (await session.execute(statement(session, _record), {
        "webhook": webhook, "delivery_id": delivery_id, "status": "processed",
        "body_sha256": body_sha256, "received_at": utcnow()})).first()
    return inserted is not None


def _record(dialect: str) -> Any:
    return insert_for(dialect, _DELIVERIES).on_conflict_do_nothing() \
        .returning(_DELIVERIES.c.id)


# PostgreSQL: the replay record and its audit row in one statement (a data-modifying CTE), so
# a delivery costs one round trip fewer. The audit row says whether the delivery was new.
_RECORD_AND_AUDIT_PG = text("""
WITH delivery AS (
    INSERT INTO webhook_deliveries (webhook, delivery_id, status, body_sha256, received_at)
    VALUES (:webhook, :delivery_id, 'processed', :body_sha256, :received_at)
    ON CONFLICT DO NOTHING
    RETURNING id)
INSERT INTO audit_log (event, guild_id, actor_hash, created_at, request_id, details)
SELECT CASE WHEN EXISTS (SELECT 1 FROM delivery) THEN :accepted ELSE :duplicate END,
       NULL, NULL, :created_at, :request_id, :details
RETURNING event
""").bindparams(bindparam("received_at", type_=UTCDateTime()),
                bindparam("created_at", type_=UTCDateTime()),
                bindparam("details", type_=JSON()))


async def record_with_audit(session: AsyncSession, *, webhook: str, delivery_id: str,
                            body_sha256: str, details: dict[str, Any], accepted: str,
                            duplicate: str) -> bool:
    """`record_delivery`, plus one audit row: event `accepted` when the delivery is new (True),
    `duplicate` when it is a replay (False). One round trip on PostgreSQL, two on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        new = await record_delivery(session, webhook=webhook, delivery_id=delivery_id,
                                    body_sha256=body_sha256)
        await audit.record(session, accepted if new else duplicate, details=details)
        return new
    now = utcnow()
    event = await session.scalar(_RECORD_AND_AUDIT_PG, {
        "webhook": webhook, "delivery_id": delivery_id, "body_sha256": body_sha256,
        "received_at": now, "accepted": accepted, "duplicate": duplicate, "created_at": now,
        "request_id": current_request_id.get(), "details": details})
    return bool(event == accepted)
