"""POST /webhooks/reflections: share (upsert) or revoke a user's reflection."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Reflection, User, utcnow
from webhooks.common import Payload, UserId, WebhookContext, WebhookRejected, WebhookSpec

MAX_REFLECTION_CHARS = 4000


class ReflectionChange(Payload):
    action: Literal["upsert", "revoke"]
    reflection_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    user_id: UserId
    text: str | None = Field(default=None, max_length=MAX_REFLECTION_CHARS)

    @model_validator(mode="after")
    def _text_for_upsert(self) -> ReflectionChange:
        if self.action == "upsert" and not self.text:
            raise ValueError("upsert needs a non-empty text")
        return self


async def apply(session: AsyncSession, payload: ReflectionChange,
                context: WebhookContext) -> dict[str, Any]:
    row = await session.scalar(
        select(Reflection).where(Reflection.external_id == payload.reflection_id))
    if row is not None and row.user_id != payload.user_id:
        raise WebhookRejected(409, "reflection belongs to another user")
    if payload.action == "revoke":
        if row is not None:
            row.text = ""  # keep no copy of what the user withdrew
            row.revoked_at = utcnow()
        return {"action": "revoked", "found": row is not None}
    if await session.get(User, payload.user_id) is None:
        session.add(User(id=payload.user_id))  # the auth webhook may arrive later
        await session.flush()
    if row is None:
        session.add(Reflection(external_id=payload.reflection_id, user_id=payload.user_id,
                               text=payload.text or ""))
    else:
        row.text = payload.text or ""
        row.revoked_at = None
    return {"action": "upserted"}


SPEC = WebhookSpec(
    name="reflections",
    path="/webhooks/reflections",
    signed_with="APP_REFLECTIONS_WEBHOOK_SECRET",
    payload_model=ReflectionChange,
    apply=apply,
)
