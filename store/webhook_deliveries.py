"""The replay guard of webhooks: one row per (webhook, delivery id), written with the effect."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import insert_ignoring_conflicts
from store.models import WebhookDelivery, utcnow

# Core statements on the table: no ORM unit of work per delivery.
_DELIVERIES = cast(Table, WebhookDelivery.__table__)


async def record_delivery(session: AsyncSession, *, webhook: str, delivery_id: str,
                          body_sha256: str) -> bool:
    """True when this delivery is new; False for a replay (nothing written).

    INSERT .. ON CONFLICT DO NOTHING RETURNING id, one round trip: the unique key is the replay
    guard, and a concurrent twin waits for the first transaction and then finds the row, on
    both backends.
    """
    inserted = (await session.execute(
        insert_ignoring_conflicts(session, _DELIVERIES)
        .values(webhook=webhook, delivery_id=delivery_id, status="processed",
                body_sha256=body_sha256, received_at=utcnow())
        .returning(_DELIVERIES.c.id))).first()
    return inserted is not None
