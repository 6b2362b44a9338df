"""Signing and app helpers for webhook tests (signatures made by the standardwebhooks package)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from harness.signing import (  # noqa: F401 (re-exported for the tests)
    PATHS,
    SECRETS,
    encode,
    github_headers,
    settings_overrides,
    standard_headers,
)
from store.database import Database
from store.models import Base


async def row_counts(database: Database, *, skip: frozenset[str] = frozenset()) -> dict[str, int]:
    """Rows per table: a rejected delivery must leave every count (but the audit log) alone."""
    counts = {}
    async with database.session() as session:
        for table in Base.metadata.sorted_tables:
            if table.name not in skip:
                counts[table.name] = int(await session.scalar(
                    select(func.count()).select_from(table)) or 0)
    return counts


def auth_user(user_id: str, discord_id: str | None, email: str) -> dict[str, Any]:
    """A row of Supabase's auth.users as its database webhook sends it."""
    record: dict[str, Any] = {"id": user_id, "email": email,
                              "raw_user_meta_data": {"full_name": "Ada"}, "raw_app_meta_data": {}}
    if discord_id is not None:
        record["raw_user_meta_data"]["provider_id"] = discord_id
        record["raw_app_meta_data"] = {"provider": "discord", "providers": ["discord"]}
    return record


def auth_event(kind: str = "INSERT", *, user_id: str = "user-1", discord_id: str | None = None,
               email: str = "a@example.com", before: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """An auth.users event; an UPDATE's `old_record` is `before` (default: the same user with
    no Discord identity yet, so an UPDATE with `discord_id` is the one that adds it)."""
    record = auth_user(user_id, discord_id, email)
    event: dict[str, Any] = {"type": kind, "table": "users", "schema": "auth"}
    if kind == "DELETE":
        event["old_record"] = record
    else:
        event["record"] = record
    if kind == "UPDATE":
        event["old_record"] = before if before is not None else auth_user(user_id, None, email)
    return event
