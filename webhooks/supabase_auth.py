"""POST /webhooks/supabase/auth: Supabase database webhook on `auth.users`.

INSERT/UPDATE upsert the profile and, for a Discord sign-in, the verified Discord link (the
OAuth provider vouches for it). DELETE erases the user, as the GDPR webhook does.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from store import personal_data
from store.models import DiscordLink, TokenRevocation, User, utcnow
from utils.auth import REVOCATION_LIFETIME
from webhooks.common import Payload, UserId, WebhookContext, WebhookSpec

_SNOWFLAKE = re.compile(r"[0-9]{15,20}")


class AuthUser(Payload):
    id: UserId
    email: str | None = Field(default=None, max_length=320)
    raw_user_meta_data: dict[str, Any] = Field(default_factory=dict)
    raw_app_meta_data: dict[str, Any] = Field(default_factory=dict)
    banned_until: str | None = Field(default=None, max_length=64)

    def discord_user_id(self) -> int | None:
        """The Discord id of a user who signed in with Discord, else None."""
        providers = self.raw_app_meta_data.get("providers") or []
        if "discord" not in providers and self.raw_app_meta_data.get("provider") != "discord":
            return None
        candidate = str(self.raw_user_meta_data.get("provider_id") or "")
        return int(candidate) if _SNOWFLAKE.fullmatch(candidate) else None

    def is_banned(self) -> bool:
        if not self.banned_until:
            return False
        try:
            until = datetime.fromisoformat(self.banned_until.replace("Z", "+00:00"))
        except ValueError:
            return True  # unreadable: err on the side of refusing the tokens
        return until.tzinfo is None or until > utcnow()

    def display_name(self) -> str | None:
        for key in ("full_name", "name", "user_name"):
            value = self.raw_user_meta_data.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:200]
        return None


class AuthEvent(Payload):
    type: Literal["INSERT", "UPDATE", "DELETE"]
    table: Literal["users"]
    schema_name: Literal["auth"] = Field(alias="schema")
    record: AuthUser | None = None
    old_record: AuthUser | None = None

    @model_validator(mode="after")
    def _record_present(self) -> AuthEvent:
        if self.type == "DELETE" and self.old_record is None:
            raise ValueError("a DELETE event needs old_record")
        if self.type != "DELETE" and self.record is None:
            raise ValueError(f"an {self.type} event needs record")
        return self


async def _upsert(session: AsyncSession, user: AuthUser) -> dict[str, Any]:
    row = await session.get(User, user.id)
    if row is None:
        row = User(id=user.id)
        session.add(row)
    row.email = user.email
    row.display_name = user.display_name()
    discord_id = user.discord_user_id()
    if discord_id is not None:
        # One Discord account per user and one user per Discord account: the newest link wins.
        await session.execute(delete(DiscordLink).where(
            (DiscordLink.user_id == user.id) | (DiscordLink.discord_user_id == discord_id)))
        await session.flush()
        session.add(DiscordLink(discord_user_id=discord_id, user_id=user.id))
    return {"action": "upserted", "linked": discord_id is not None}


async def apply(session: AsyncSession, payload: AuthEvent,
                context: WebhookContext) -> dict[str, Any]:
    if payload.type == "DELETE":
        assert payload.old_record is not None
        identity = await personal_data.resolve_identity(session, user_id=payload.old_record.id)
        counts = await personal_data.erase_and_audit(session, identity, source="supabase-auth")
        await revoke_tokens(session, payload.old_record.id, "deleted")
        return {"action": "erased", "erased": counts}
    assert payload.record is not None
    if payload.record.is_banned():
        await revoke_tokens(session, payload.record.id, "banned")
    return await _upsert(session, payload.record)


async def revoke_tokens(session: AsyncSession, user_id: str, reason: str) -> None:
    """In the delivery's transaction: the user's tokens stop working when it commits."""
    now = utcnow()
    session.add(TokenRevocation(subject=user_id, revoked_at=now,
                                expires_at=now + REVOCATION_LIFETIME, reason=reason))


SPEC = WebhookSpec(
    name="supabase-auth",
    path="/webhooks/supabase/auth",
    signed_with="SUPABASE_WEBHOOK_SECRET",
    payload_model=AuthEvent,
    apply=apply,
)
