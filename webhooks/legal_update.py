"""POST /webhooks/legal-update: announce updated terms or privacy policy in every guild.

One outbox entry per guild with an announcement channel; links accept only http(s).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, HttpUrl
from sqlalchemy.ext.asyncio import AsyncSession

from store import guild_settings, outbox
from utils.sanitize import safe_embed_text
from webhooks.spec import Payload, WebhookContext, WebhookSpec

TITLES = {"terms": "Our Terms of Service were updated", "privacy": "Our Privacy Policy was updated"}


class LegalUpdate(Payload):
    document: Literal["terms", "privacy"]
    version: str = Field(min_length=1, max_length=50)
    url: HttpUrl = Field(max_length=2048)  # pydantic's HttpUrl admits only http and https
    summary: str | None = Field(default=None, max_length=1000)
    effective_date: date | None = None


def announcement(payload: LegalUpdate) -> dict[str, Any]:
    fields = [{"name": "Version", "value": safe_embed_text(payload.version, 1024)}]
    if payload.effective_date is not None:
        fields.append({"name": "Effective", "value": payload.effective_date.isoformat()})
    return {
        "title": TITLES[payload.document],
        "url": str(payload.url),
        "description": safe_embed_text(payload.summary or "Please read the new version.", 1000),
        "fields": fields,
    }


async def apply(session: AsyncSession, payload: LegalUpdate,
                context: WebhookContext) -> dict[str, Any]:
    channels = await guild_settings.announcement_channels(session)
    embed = announcement(payload)
    for channel_id in channels:
        await outbox.enqueue(session, kind="channel_message", target_id=channel_id,
                             payload={"embed": embed},
                             dedupe_key=f"legal:{context.delivery_id}:{channel_id}")
    return {"queued": len(channels)}


SPEC = WebhookSpec(
    name="legal-update",
    path="/webhooks/legal-update",
    signed_with="LEGAL_UPDATE_WEBHOOK_SECRET",
    payload_model=LegalUpdate,
    apply=apply,
)
