"""A member's account: the profile, its Discord link, premium status, shared reflections."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import Database
from store.models import DiscordLink, Reflection, User, utcnow


async def discord_id_for(session: AsyncSession, user_id: str) -> int | None:
    """The Discord account linked to a Supabase user, in the caller's session."""
    discord_id: int | None = await session.scalar(
        select(DiscordLink.discord_user_id).where(DiscordLink.user_id == user_id))
    return discord_id


async def linked_user_id(database: Database, discord_user_id: int) -> str | None:
    async with database.session() as session:
        user_id: str | None = await session.scalar(
            select(DiscordLink.user_id).where(DiscordLink.discord_user_id == discord_user_id))
        return user_id


async def is_premium(database: Database, user_id: str) -> bool:
    async with database.session() as session:
        user = await session.get(User, user_id)
    return bool(user and user.is_premium)


async def set_premium(session: AsyncSession, user_id: str, premium: bool) -> bool:
    """Record the billing service's verdict; False when the user is not known here."""
    user = await session.get(User, user_id)
    if user is None:
        return False
    user.is_premium = premium
    return True


async def ensure_user(session: AsyncSession, user_id: str) -> None:
    """A bare profile row, so rows that belong to the user can exist before the auth event."""
    if await session.get(User, user_id) is None:
        session.add(User(id=user_id))
        await session.flush()


async def upsert_profile(session: AsyncSession, user_id: str, *, email: str | None,
                         display_name: str | None, discord_user_id: int | None) -> None:
    """Create or update the profile and, when given, its verified Discord link."""
    row = await session.get(User, user_id)
    if row is None:
        row = User(id=user_id)
        session.add(row)
    row.email = email
    row.display_name = display_name
    if discord_user_id is not None:
        # One Discord account per user and one user per Discord account: the newest link wins.
        await session.execute(delete(DiscordLink).where(
            (DiscordLink.user_id == user_id) | (DiscordLink.discord_user_id == discord_user_id)))
        await session.flush()
        session.add(DiscordLink(discord_user_id=discord_user_id, user_id=user_id))


async def shared_reflections(database: Database, discord_user_id: int,
                             limit: int = 10) -> list[str]:
    """The caller's own shared (not revoked) reflections, newest first."""
    user_id = await linked_user_id(database, discord_user_id)
    if user_id is None:
        return []
    async with database.session() as session:
        rows = await session.scalars(
            select(Reflection.text).where(Reflection.user_id == user_id,
                                          Reflection.revoked_at.is_(None))
            .order_by(Reflection.updated_at.desc()).limit(limit))
        return list(rows)


class ReflectionOwnedByAnother(Exception):
    """The reflection id exists and belongs to a different user."""


async def _reflection_of(session: AsyncSession, external_id: str,
                         user_id: str) -> Reflection | None:
    row = await session.scalar(select(Reflection).where(Reflection.external_id == external_id))
    if row is not None and row.user_id != user_id:
        raise ReflectionOwnedByAnother(external_id)
    return row


async def share_reflection(session: AsyncSession, external_id: str, user_id: str,
                           text: str) -> None:
    """Create or update a shared reflection (and a bare profile if the user is new here)."""
    row = await _reflection_of(session, external_id, user_id)
    await ensure_user(session, user_id)  # the auth webhook may arrive later
    if row is None:
        session.add(Reflection(external_id=external_id, user_id=user_id, text=text))
    else:
        row.text = text
        row.revoked_at = None


async def withdraw_reflection(session: AsyncSession, external_id: str, user_id: str) -> bool:
    """Withdraw a reflection, keeping no copy of its text; False when it was not here."""
    row = await _reflection_of(session, external_id, user_id)
    if row is None:
        return False
    row.text = ""
    row.revoked_at = utcnow()
    return True
