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


def auth_event(kind: str = "INSERT", *, user_id: str = "user-1", discord_id: str | None = None,
               email: str = "a@example.com") -> dict[str, Any]:
    record: dict[str, Any] = {"id": user_id, "email": email,
              "raw_user_meta_data": {"full_name": "Ada"}, "raw_app_meta_data": {}}
    if discord_id is not None:
        record["raw_user_meta_data"]["provider_id"] = discord_id
        record["raw_app_meta_data"] = {"provider": "discord", "providers": ["discord"]}
    event: dict[str, Any] = {"type": kind, "table": "users", "schema": "auth"}
    if kind == "DELETE":
        event["old_record"] = record
    else:
        event["record"] = record
    return event
