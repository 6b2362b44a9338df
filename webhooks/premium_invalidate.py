"""POST /webhooks/premium-invalidate: drop a user's cached premium status on every replica."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store import accounts
from store.database import after_commit
from webhooks.spec import Payload, UserId, WebhookContext, WebhookSpec


class PremiumChange(Payload):
    user_id: UserId
    is_premium: bool | None = None  # the new status, when the sender knows it


async def apply(session: AsyncSession, payload: PremiumChange,
                context: WebhookContext) -> dict[str, Any]:
    if payload.is_premium is not None:
        await accounts.set_premium(session, payload.user_id, payload.is_premium)
    premium = context.premium
    if premium is not None:
        # After the commit, so no replica can re-read the old status into its cache.
        after_commit(session, lambda: premium.invalidate(payload.user_id))
    return {"invalidated": True}


SPEC = WebhookSpec(
    name="premium-invalidate",
    path="/webhooks/premium-invalidate",
    signed_with="PREMIUM_INVALIDATE_WEBHOOK_SECRET",
    payload_model=PremiumChange,
    apply=apply,
)
