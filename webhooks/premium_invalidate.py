"""POST /webhooks/premium-invalidate: drop a user's cached premium status on every replica."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import User
from utils.app_keys import PREMIUM
from webhooks.common import Payload, UserId, WebhookContext, WebhookSpec


class PremiumChange(Payload):
    user_id: UserId
    is_premium: bool | None = None  # the new status, when the sender knows it


async def apply(session: AsyncSession, payload: PremiumChange,
                context: WebhookContext) -> dict[str, Any]:
    if payload.is_premium is not None:
        user = await session.get(User, payload.user_id)
        if user is not None:
            user.is_premium = payload.is_premium
    return {"invalidated": True}


async def after_commit(app: web.Application, payload: PremiumChange) -> None:
    # After the commit, so no replica can re-read the old status into its cache.
    await app[PREMIUM].invalidate(payload.user_id)


SPEC = WebhookSpec(
    name="premium-invalidate",
    path="/webhooks/premium-invalidate",
    signed_with="PREMIUM_INVALIDATE_WEBHOOK_SECRET",
    payload_model=PremiumChange,
    apply=apply,
    after_commit=after_commit,
)
