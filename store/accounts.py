"""A member's account: the profile, its Discord link, premium status, shared reflections.

What webhooks write (premium status, profiles, links, reflections) are Core statements on the
tables, upserts where a row may or may not exist: one round trip each, no ORM unit of work.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import Database, dialect_insert, insert_for, statement
from store.models import DiscordLink, Reflection, User, UTCDateTime, utcnow

_USERS = cast(Table, User.__table__)
_LINKS = cast(Table, DiscordLink.__table__)
_REFLECTIONS = cast(Table, Reflection.__table__)


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
    updated = (await session.execute(
        update(_USERS).where(_USERS.c.id == user_id).values(is_premium=premium)
        .returning(_USERS.c.id))).first()
    return updated is not None


async def ensure_user(session: AsyncSession, user_id: str) -> None:
    """A bare profile row, so rows that belong to the user can exist before the auth event."""
    await session.execute(statement(session, _bare_user), {"id": user_id})


def _bare_user(dialect: str) -> Any:
    return insert_for(dialect, _USERS).on_conflict_do_nothing()


async def upsert_profile(session: AsyncSession, user_id: str, *, email: str | None,
                         display_name: str | None, discord_user_id: int | None) -> None:
    """Create or update the profile and, when given, its verified Discord link."""
    profile = dialect_insert(session, _USERS).values(id=user_id, email=email,
                                                     display_name=display_name)
    await session.execute(profile.on_conflict_do_update(
        index_elements=[_USERS.c.id],
        set_={"email": profile.excluded.email, "display_name": profile.excluded.display_name,
              "updated_at": utcnow()}))
    if discord_user_id is not None:
        # One Discord account per user and one user per Discord account: the newest link wins.
        await session.execute(delete(_LINKS).where(
            (_LINKS.c.user_id == user_id) | (_LINKS.c.discord_user_id == discord_user_id)))
        await session.execute(insert(_LINKS).values(discord_user_id=discord_user_id,
                                                    user_id=user_id))


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


async def share_reflection(session: AsyncSession, external_id: str, user_id: str,
                           text: str) -> None:
    """Create or update a shared reflection (and a bare profile if the user is new here).

    One upsert: a row of another user is left alone (the conflict's WHERE), which returns no
    row, and the caller's transaction is then rolled back by the exception. On PostgreSQL the
    bare profile rides in the same statement (a data-modifying CTE): one round trip."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:
        await ensure_user(session, user_id)  # the auth webhook may arrive later
    now = utcnow()
    written = (await session.execute(statement(session, _upsert_reflection), {
        "external_id": external_id, "user_id": user_id, "text": text, "updated_at": now,
        **({"profile_id": user_id, "profile_at": now} if postgres else {})})).first()
    if written is None:
        raise ReflectionOwnedByAnother(external_id)


def _upsert_reflection(dialect: str) -> Any:
    row = insert_for(dialect, _REFLECTIONS)
    upsert = row.on_conflict_do_update(
        index_elements=[_REFLECTIONS.c.external_id],
        # updated_at: the new row's (now), taken over by the existing row
        set_={"text": row.excluded.text, "revoked_at": None,
              "updated_at": row.excluded.updated_at},
        where=_REFLECTIONS.c.user_id == row.excluded.user_id,
    ).returning(_REFLECTIONS.c.id)
    if dialect != "postgresql":
        return upsert
    # The bare profile first (the foreign key is checked at the end of the statement).
    at = bindparam("profile_at", type_=UTCDateTime())
    profile = insert_for(dialect, _USERS).values(
        id=bindparam("profile_id"), is_premium=False, created_at=at, updated_at=at,
    ).on_conflict_do_nothing().cte("profile")
    return upsert.add_cte(profile)


async def withdraw_reflection(session: AsyncSession, external_id: str, user_id: str) -> bool:
    """Withdraw a reflection, keeping no copy of its text; False when it was not here."""
    withdrawn = (await session.execute(
        update(_REFLECTIONS)
        .where(_REFLECTIONS.c.external_id == external_id, _REFLECTIONS.c.user_id == user_id)
        .values(text="", revoked_at=utcnow()).returning(_REFLECTIONS.c.id))).first()
    if withdrawn is not None:
        return True
    owner = await session.scalar(
        select(_REFLECTIONS.c.user_id).where(_REFLECTIONS.c.external_id == external_id))
    if owner is not None:
        raise ReflectionOwnedByAnother(external_id)
    return False
