"""POST /webhooks/gdpr-erasure: erase every personal row of one user; keep a hashed audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from members.erasure import erase_person
from webhooks.spec import DiscordId, Payload, UserId, WebhookContext, WebhookSpec


class ErasureRequest(Payload):
    user_id: UserId
    discord_user_id: DiscordId | None = None


async def apply(session: AsyncSession, payload: ErasureRequest,
                context: WebhookContext) -> dict[str, Any]:
    erasure = await erase_person(session, context.premium, source="gdpr-erasure",
                                 user_id=payload.user_id,
                                 discord_user_id=payload.discord_user_id)
    return {"erased": erasure.rows}


SPEC = WebhookSpec(
    name="gdpr-erasure",
    path="/webhooks/gdpr-erasure",
    signed_with="SUPABASE_WEBHOOK_SECRET",
    payload_model=ErasureRequest,
    apply=apply,
)
