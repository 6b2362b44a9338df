"""POST /webhooks/supabase/auth: Supabase database webhook on `auth.users`.

INSERT/UPDATE upsert the profile and, for a Discord sign-in, the verified Discord link (the
OAuth provider vouches for it). DELETE erases the user, as the GDPR webhook does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from members.erasure import erase_person
from store import accounts, revocations
from store.models import utcnow
from utils.ids import parse_discord_id
from webhooks.spec import Payload, UserId, WebhookContext, WebhookSpec

MIN_SNOWFLAKE_DIGITS = 15


class AuthUser(Payload):
    id: UserId
    email: str | None = Field(default=None, max_length=320)
    raw_user_meta_data: dict[str, Any] = Field(default_factory=dict)
    raw_app_meta_data: dict[str, Any] = Field(default_factory=dict)
    banned_until: str | None = Field(default=None, max_length=64)

    def signed_in_with_discord(self) -> bool:
        """Discord is one of the user's identities (app metadata: only Supabase writes it)."""
        providers = self.raw_app_meta_data.get("providers") or []
        return "discord" in providers or self.raw_app_meta_data.get("provider") == "discord"

    def discord_user_id(self) -> int | None:
        """The Discord id in the user's metadata, for a user who signed in with Discord."""
        if not self.signed_in_with_discord():
            return None
        candidate = str(self.raw_user_meta_data.get("provider_id") or "")
        # A snowflake has at least 15 digits; the one parser refuses non-ASCII and > 2**63-1.
        return parse_discord_id(candidate) if len(candidate) >= MIN_SNOWFLAKE_DIGITS else None

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


async def apply(session: AsyncSession, payload: AuthEvent,
                context: WebhookContext) -> dict[str, Any]:
    if payload.type == "DELETE":
        assert payload.old_record is not None
        erasure = await erase_person(session, context.premium, source="supabase-auth",
                                     user_id=payload.old_record.id)
        return {"action": "erased", "erased": erasure.rows}
    user = payload.record
    assert user is not None
    if user.is_banned():
        await revocations.revoke_in(session, subject=user.id, reason="banned")
    discord_id = _discord_id_from_discord(payload)
    await accounts.upsert_profile(session, user.id, email=user.email,
                                  display_name=user.display_name(), discord_user_id=discord_id)
    return {"action": "upserted", "linked": discord_id is not None}


def _discord_id_from_discord(event: AuthEvent) -> int | None:
    """The Discord id to link, only when Discord itself just wrote it; else None (the link, if
    any, stays as it is).

    `raw_user_meta_data` is the user's to edit (`auth.updateUser({data})`): a `provider_id`
    set there by hand would link the account to someone else's Discord (an owner's: every
    guild's admin). Supabase writes it from Discord when the Discord identity is added: at the
    INSERT of a Discord sign-up, or at the UPDATE that adds `discord` to the providers
    (`raw_app_meta_data`, which users cannot edit). Any other change of it is the user's own.
    An UPDATE without `old_record` cannot tell the two apart: nothing is linked.
    """
    assert event.record is not None
    if event.type == "UPDATE" and (event.old_record is None
                                   or event.old_record.signed_in_with_discord()):
        return None
    return event.record.discord_user_id()


SPEC = WebhookSpec(
    name="supabase-auth",
    path="/webhooks/supabase/auth",
    signed_with="SUPABASE_WEBHOOK_SECRET",
    payload_model=AuthEvent,
    apply=apply,
)
