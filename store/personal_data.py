"""The one registry of tables that hold personal data, and what erasure and export do with it.

Erasure (`members.erasure.erase_person`) and `/export_my_data` read this registry, and a
test walks the SQLAlchemy metadata so that a new table with a user column cannot be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Base, DiscordLink, OutboxMessage, Reflection, User


@dataclass(frozen=True)
class Identity:
    """Whom to erase or export: a Supabase user, a Discord account, or both."""

    user_ids: frozenset[str]
    discord_user_ids: frozenset[int]


@dataclass(frozen=True)
class PersonalTable:
    model: type[Base]
    owner: str  # "user" (a Supabase user id column) or "discord" (a Discord user id column)
    column: str

    def condition(self, identity: Identity) -> ColumnElement[bool] | None:
        column = getattr(self.model, self.column)
        ids: frozenset[Any] = identity.user_ids if self.owner == "user" \
            else identity.discord_user_ids
        if not ids:
            return None
        condition: ColumnElement[bool] = column.in_(sorted(ids))
        if self.model is OutboxMessage:  # only DMs are addressed to a person
            condition = condition & (OutboxMessage.kind == "dm")
        return condition


# Children before parents, so deletes never trip a foreign key.
PERSONAL_TABLES: tuple[PersonalTable, ...] = (
    PersonalTable(Reflection, "user", "user_id"),
    PersonalTable(OutboxMessage, "discord", "target_id"),
    PersonalTable(DiscordLink, "user", "user_id"),
    PersonalTable(DiscordLink, "discord", "discord_user_id"),
    PersonalTable(User, "user", "id"),
)

# Tables with no personal data, and why. A table must be in one list or the other.
NOT_PERSONAL: dict[str, str] = {
    "audit_log": "actors are stored only as salted hashes; details hold no personal data",
    "guild_configs": "per-guild settings, keyed by guild",
    "webhook_deliveries": "delivery ids and body hashes only",
    "api_keys": "service credentials, not people",
    "app_state": "installation values",
    "token_revocations": "a user id kept only until that user's tokens expire (at most a day), "
                         "so a deleted or banned user's tokens stay refused",
    "knowledge_documents": "Drive file ids, names and checksums of the knowledge base's PDFs",
    "knowledge_passages": "text of the knowledge base's PDFs",
    "drive_sync_runs": "counts and timings of Drive syncs",
    "llm_usage": "answers counted per guild and day, never per person",
}


async def resolve_identity(session: AsyncSession, *, user_id: str | None = None,
                           discord_user_id: int | None = None) -> Identity:
    """Follow the Discord link both ways so erasure reaches every row of the person."""
    user_ids = {user_id} if user_id else set()
    discord_ids = {discord_user_id} if discord_user_id is not None else set()
    if user_ids:
        linked = await session.scalars(
            select(DiscordLink.discord_user_id).where(DiscordLink.user_id.in_(user_ids)))
        discord_ids.update(linked)
    if discord_ids:
        linked_users = await session.scalars(
            select(DiscordLink.user_id).where(DiscordLink.discord_user_id.in_(discord_ids)))
        user_ids.update(linked_users)
    return Identity(frozenset(user_ids), frozenset(discord_ids))


async def erase(session: AsyncSession, identity: Identity) -> dict[str, int]:
    """Delete every personal row of `identity`; returns rows deleted per table. Idempotent."""
    counts = {table.model.__tablename__: 0 for table in PERSONAL_TABLES}
    for table in PERSONAL_TABLES:
        condition = table.condition(identity)
        if condition is None:
            continue
        result = await session.execute(delete(table.model).where(condition))
        counts[table.model.__tablename__] += int(getattr(result, "rowcount", 0) or 0)
    return counts


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def export(session: AsyncSession, identity: Identity) -> dict[str, list[dict[str, Any]]]:
    """Every personal row of `identity`, table by table, as JSON-ready dicts."""
    exported: dict[str, list[dict[str, Any]]] = {}
    for table in PERSONAL_TABLES:
        condition = table.condition(identity)
        name = table.model.__tablename__
        exported.setdefault(name, [])
        if condition is None:
            continue
        columns = table.model.__table__.columns
        for row in await session.scalars(select(table.model).where(condition)):
            record = {column.key: _jsonable(getattr(row, column.key)) for column in columns}
            if record not in exported[name]:
                exported[name].append(record)
    return exported
