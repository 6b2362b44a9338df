"""Per-guild settings: read, change (audit-logged with before and after), list audit events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.database import Database
from store.models import AuditLog, GuildConfig


@dataclass(frozen=True)
class GuildSettings:
    guild_id: int
    announcement_channel_id: int | None
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """For the audit log: Discord ids as strings, as every JSON the bot writes has them."""
        channel = self.announcement_channel_id
        return {"announcement_channel_id": str(channel) if channel is not None else None,
                "settings": dict(self.settings)}


async def get(database: Database, guild_id: int) -> GuildSettings:
    async with database.session() as session:
        row = await session.get(GuildConfig, guild_id)
    if row is None:
        return GuildSettings(guild_id, None, {})
    return GuildSettings(guild_id, row.announcement_channel_id, dict(row.settings))


async def update(database: Database, guild_id: int, *, actor_id: int | str, source: str,
                 announcement_channel_id: int | None = None,
                 settings: dict[str, Any] | None = None,
                 clear_announcement_channel: bool = False) -> GuildSettings:
    """Change what is given; the audit event keeps the before and after values."""
    async with database.transaction() as session:
        row = await session.get(GuildConfig, guild_id, with_for_update=True)
        if row is None:
            row = GuildConfig(guild_id=guild_id, settings={})
            session.add(row)
        before = GuildSettings(guild_id, row.announcement_channel_id, dict(row.settings or {}))
        if announcement_channel_id is not None or clear_announcement_channel:
            row.announcement_channel_id = announcement_channel_id
        if settings is not None:
            row.settings = {**before.settings, **settings}
        after = GuildSettings(guild_id, row.announcement_channel_id, dict(row.settings))
        await audit.record(session, "guild.config.changed", guild_id=guild_id,
                           actor_id=actor_id, details={"source": source,
                                                       "before": before.as_dict(),
                                                       "after": after.as_dict()})
    return after


@dataclass(frozen=True)
class AuditEntry:
    id: int
    created_at: str
    event: str
    actor: str | None  # a short prefix of the salted hash: enough to tell actors apart
    details: dict[str, Any]


async def recent_audit(database: Database, guild_id: int, *, limit: int = 10,
                       offset: int = 0) -> tuple[list[AuditEntry], int]:
    """The guild's audit events, newest first, and how many there are in all."""
    async with database.session() as session:
        total = int(await session.scalar(select(func.count()).select_from(AuditLog)
                                         .where(AuditLog.guild_id == guild_id)) or 0)
        rows = (await session.scalars(select(AuditLog).where(AuditLog.guild_id == guild_id)
                                      .order_by(AuditLog.id.desc()).limit(limit)
                                      .offset(offset))).all()
    return [AuditEntry(row.id, row.created_at.isoformat(), row.event,
                       row.actor_hash[:12] if row.actor_hash else None, dict(row.details))
            for row in rows], total


async def announcement_channels(session: AsyncSession) -> list[int]:
    """Every guild's announcement channel, in guild order (guilds without one are skipped)."""
    channels = await session.scalars(
        select(GuildConfig.announcement_channel_id)
        .where(GuildConfig.announcement_channel_id.is_not(None))
        .order_by(GuildConfig.guild_id))
    return [channel for channel in channels if channel is not None]
