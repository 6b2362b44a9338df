"""A member's own data as the bot shows it: link, premium status, reflections."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import Database
from store.models import DiscordLink, Reflection, User
from utils.premium_cache import PremiumCache


@dataclass(frozen=True)
class PremiumStatus:
    linked: bool
    premium: bool


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


async def premium_status(database: Database, cache: PremiumCache,
                         discord_user_id: int) -> PremiumStatus:
    """From the cache when fresh; the premium webhook invalidates it on every replica."""
    user_id = await linked_user_id(database, discord_user_id)
    if user_id is None:
        return PremiumStatus(linked=False, premium=False)
    cached = cache.get(user_id)
    if cached is not None:
        return PremiumStatus(linked=True, premium=cached)
    async with database.session() as session:
        user = await session.get(User, user_id)
    premium = bool(user and user.is_premium)
    cache.set(user_id, premium)
    return PremiumStatus(linked=True, premium=premium)


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
