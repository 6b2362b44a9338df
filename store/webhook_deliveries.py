"""The replay guard of webhooks: one row per (webhook, delivery id), written with the effect."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from store.database import insert_ignoring_conflicts
from store.models import WebhookDelivery, utcnow


async def record_delivery(session: AsyncSession, *, webhook: str, delivery_id: str,
                          body_sha256: str) -> bool:
    """True when this delivery is new; False for a replay (nothing written).

    INSERT .. ON CONFLICT DO NOTHING: the unique key is the replay guard, and a concurrent twin
    waits for the first transaction and then finds the row, on both backends.
    """
    inserted = await session.scalar(
        insert_ignoring_conflicts(session, WebhookDelivery)
        .values(webhook=webhook, delivery_id=delivery_id, status="processed",
                body_sha256=body_sha256, received_at=utcnow())
        .returning(WebhookDelivery.id))
    return inserted is not None
