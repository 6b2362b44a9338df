"""Token revocations: a user's (or one session's) tokens refused before they expire.

A revocation is kept a day, then deleted (when the next one is written). A token that lives
longer than that (`exp - iat`, Supabase allows up to a week) could outlive its revocation, so it
is refused outright.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import Database
from store.models import TokenRevocation, utcnow

REVOCATION_LIFETIME = timedelta(days=1)  # longer than any token we accept lives


async def revoke_in(session: AsyncSession, *, subject: str | None = None,
                    session_id: str | None = None, reason: str) -> None:
    """Refuse every token of `subject` (or of `session_id`) issued up to now, in the caller's
    transaction: the refusal starts when it commits."""
    if subject is None and session_id is None:
        raise ValueError("revoke needs a subject or a session id")
    now = utcnow()
    # Expired rows protect nothing, and an erased user's id must not stay past a day.
    await session.execute(delete(TokenRevocation).where(TokenRevocation.expires_at <= now))
    await session.execute(insert(TokenRevocation).values(
        subject=subject, session_id=session_id, revoked_at=now,
        expires_at=now + REVOCATION_LIFETIME, reason=reason))


async def revoke(database: Database, *, subject: str | None = None,
                 session_id: str | None = None, reason: str) -> None:
    """`revoke_in` in a transaction of its own."""
    async with database.transaction() as session:
        await revoke_in(session, subject=subject, session_id=session_id, reason=reason)


async def is_revoked(database: Database, claims: dict[str, Any]) -> bool:
    """Was this token (by `sub`, `session_id` and `iat`) revoked after it was issued? (A token
    that would outlive a revocation of it is refused before: `outlives_revocations`.)"""
    issued_at = datetime.fromtimestamp(float(claims.get("iat", 0)), UTC)
    conditions = [TokenRevocation.subject == str(claims["sub"])]
    if claims.get("session_id"):
        conditions.append(TokenRevocation.session_id == str(claims["session_id"]))
    async with database.session() as session:
        found = await session.scalar(
            select(TokenRevocation.id).where(or_(*conditions),
                                             TokenRevocation.revoked_at >= issued_at,
                                             TokenRevocation.expires_at > utcnow()).limit(1))
    return found is not None


def outlives_revocations(claims: dict[str, Any]) -> bool:
    """Does the token (or one without `iat`) live longer than a revocation is kept?"""
    if "iat" not in claims:
        return True
    lifetime = float(claims["exp"]) - float(claims["iat"])
    return lifetime > REVOCATION_LIFETIME.total_seconds()
