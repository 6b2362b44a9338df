"""POST /webhooks/reflections: share (upsert) or revoke a user's reflection."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from store import accounts, webhook_ingest
from store.database import Database
from store.webhook_deliveries import DeliveryRecord
from webhooks.signatures import WebhookRejected
from webhooks.spec import Payload, UserId, WebhookContext, WebhookSpec

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
    try:
        if payload.action == "revoke":
            found = await accounts.withdraw_reflection(session, payload.reflection_id,
                                                       payload.user_id)
            return {"action": "revoked", "found": found}
        await accounts.share_reflection(session, payload.reflection_id, payload.user_id,
                                        payload.text or "")
    except accounts.ReflectionOwnedByAnother:
        raise WebhookRejected(409, "reflection belongs to another user") from None
    return {"action": "upserted"}


async def apply_on_postgres(database: Database, record: DeliveryRecord,
                            payload: ReflectionChange,
                            context: WebhookContext) -> dict[str, Any] | None:
    """`apply` with the delivery's record, in one statement (store.webhook_ingest)."""
    try:
        if payload.action == "revoke":
            done = await webhook_ingest.withdraw_reflection(
                database, record, external_id=payload.reflection_id, user_id=payload.user_id)
        else:
            done = await webhook_ingest.share_reflection(
                database, record, external_id=payload.reflection_id,
                user_id=payload.user_id, text=payload.text or "")
    except webhook_ingest.Refused:
        raise WebhookRejected(409, webhook_ingest.OWNED_BY_ANOTHER) from None
    if not done.new:
        return None
    if payload.action == "revoke":
        return {"action": "revoked", "found": done.written}
    return {"action": "upserted"}


SPEC = WebhookSpec(
    name="reflections",
    path="/webhooks/reflections",
    signed_with="APP_REFLECTIONS_WEBHOOK_SECRET",
    payload_model=ReflectionChange,
    apply=apply,
    apply_on_postgres=apply_on_postgres,
)
