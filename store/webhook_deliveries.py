"""The replay guard of webhooks: one row per (webhook, delivery id), written with the effect,
and one audit row per delivery saying whether it was new.

The PostgreSQL text of the record and its audit row (`RECORD_CTES`) is shared by the general
path here and by the one-statement path of store/webhook_ingest.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.database import insert_for, statement, storable_json
from store.models import WebhookDelivery, utcnow
from utils.logging import current_request_id

ACCEPTED = "webhook.accepted"  # audit events: a new delivery, a replay
DUPLICATE = "webhook.duplicate"

# Core statements on the table: no ORM unit of work per delivery.
_DELIVERIES = cast(Table, WebhookDelivery.__table__)

# PostgreSQL: the replay record and its audit row as data-modifying CTEs (asyncpg parameters):
# $1 webhook, $2 delivery id, $3 body sha256, $4 now, $5 request id, $6 audit details (JSON).
# A statement built on it reads `EXISTS (SELECT 1 FROM delivery)`: true when the delivery is new.
RECORD_CTES = f"""
delivery AS (
    INSERT INTO webhook_deliveries (webhook, delivery_id, status, body_sha256, received_at)
    VALUES ($1, $2, 'processed', $3, $4)
    ON CONFLICT DO NOTHING
    RETURNING id),
audit AS (
    INSERT INTO audit_log (event, created_at, request_id, details)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM delivery) THEN '{ACCEPTED}' ELSE '{DUPLICATE}' END,
           $4, $5, $6::json)"""  # noqa: S608 (constants only: values travel as parameters)

_RECORD_AND_AUDIT = "WITH " + RECORD_CTES + "\nSELECT EXISTS (SELECT 1 FROM delivery)"  # noqa: S608


@dataclass(frozen=True)
class DeliveryRecord:
    """What every delivery writes besides its effect: the replay record and its audit row."""

    webhook: str
    delivery_id: str
    body_sha256: str
    details: dict[str, Any]
    # Taken where the record is made: a batch is sent from another task's context.
    request_id: str | None = field(default_factory=current_request_id.get)

    def parameters(self, now: datetime) -> tuple[Any, ...]:
        """RECORD_CTES' parameters, $1 to $6."""
        return (self.webhook, self.delivery_id, self.body_sha256, now, self.request_id,
                storable_json(self.details))


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


async def record_with_audit(session: AsyncSession, record: DeliveryRecord) -> bool:
    """`record_delivery`, plus one audit row (ACCEPTED when the delivery is new: True;
    DUPLICATE for a replay: False), in the session's transaction. One round trip on
    PostgreSQL, two on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        new = await record_delivery(session, webhook=record.webhook,
                                    delivery_id=record.delivery_id,
                                    body_sha256=record.body_sha256)
        await audit.record(session, ACCEPTED if new else DUPLICATE, details=record.details)
        return new
    connection = await session.connection()
    result = await connection.exec_driver_sql(_RECORD_AND_AUDIT, record.parameters(utcnow()))
    return bool(result.scalar_one())
