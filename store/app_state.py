"""Small values this installation keeps for itself (the last synced command tree, ...)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from store.database import Database
from store.models import AppState


async def get_value(database: Database, key: str) -> str | None:
    async with database.session() as session:
        value: str | None = await session.scalar(select(AppState.value)
                                                 .where(AppState.key == key))
        return value


async def set_value(database: Database, key: str, value: str) -> None:
    """Insert or replace `key` (safe when replicas race: the last writer wins)."""
    async with database.transaction() as session:
        changed = await session.execute(update(AppState).where(AppState.key == key)
                                        .values(value=value))
        if getattr(changed, "rowcount", 0):
            return
        try:
            async with session.begin_nested():
                session.add(AppState(key=key, value=value))
        except IntegrityError:  # another replica inserted it first
            await session.execute(update(AppState).where(AppState.key == key)
                                  .values(value=value))
