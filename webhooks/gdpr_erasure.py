"""POST /webhooks/gdpr-erasure: erase every personal row of one user; keep a hashed audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store import personal_data
from webhooks.common import DiscordId, Payload, UserId, WebhookContext, WebhookSpec


class ErasureRequest(Payload):
    user_id: UserId
    discord_user_id: DiscordId | None = None


async def apply(session: AsyncSession, payload: ErasureRequest,
                context: WebhookContext) -> dict[str, Any]:
    identity = await personal_data.resolve_identity(
        session, user_id=payload.user_id, discord_user_id=payload.discord_user_id)
    counts = await personal_data.erase_and_audit(session, identity, source="gdpr-erasure")
    return {"erased": counts}


SPEC = WebhookSpec(
    name="gdpr-erasure",
    path="/webhooks/gdpr-erasure",
    signed_with="SUPABASE_WEBHOOK_SECRET",
    payload_model=ErasureRequest,
    apply=apply,
)
