"""POST /webhooks/founder: deliver a founder's message to a linked user by DM (sanitized).

The DM goes through the outbox, so it is sent once the bot is connected, exactly once.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from store import accounts, outbox
from utils.sanitize import EMBED_DESCRIPTION_LIMIT, EMBED_TITLE_LIMIT, safe_embed_text
from webhooks.signatures import WebhookRejected
from webhooks.spec import Payload, UserId, WebhookContext, WebhookSpec

DEFAULT_TITLE = "A message from the founder"


class FounderMessage(Payload):
    user_id: UserId
    message: str = Field(min_length=1, max_length=EMBED_DESCRIPTION_LIMIT)
    title: str | None = Field(default=None, max_length=EMBED_TITLE_LIMIT)


async def apply(session: AsyncSession, payload: FounderMessage,
                context: WebhookContext) -> dict[str, Any]:
    discord_id = await accounts.discord_id_for(session, payload.user_id)
    if discord_id is None:
        raise WebhookRejected(409, "user has no linked Discord account")
    embed = {
        "title": safe_embed_text(payload.title or DEFAULT_TITLE, EMBED_TITLE_LIMIT),
        "description": safe_embed_text(payload.message, EMBED_DESCRIPTION_LIMIT),
    }
    await outbox.enqueue(session, kind="dm", target_id=discord_id, payload={"embed": embed},
                         dedupe_key=f"founder:{context.delivery_id}")
    return {"queued": 1}


SPEC = WebhookSpec(
    name="founder",
    path="/webhooks/founder",
    signed_with="FOUNDER_WEBHOOK_SECRET",
    payload_model=FounderMessage,
    apply=apply,
)
