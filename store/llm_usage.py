"""LLM calls per guild per day: the daily budget of /learn answers, counted atomically."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from store.database import Database
from store.models import (
    LlmUsage,
)


def utc_day(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).date().isoformat()


async def consume_llm_budget(database: Database, guild_id: int, budget: int, *,
                             day: str | date | None = None) -> int | None:
    """Count one LLM answer for `guild_id` today if the budget allows it.

    Returns the guild's count including this answer, or None when the budget is spent (nothing
    is counted then). One atomic statement (`INSERT ... ON CONFLICT DO UPDATE ... WHERE count <
    budget RETURNING count`), so concurrent answers on several replicas never overspend.
    Direct messages count under guild 0.
    """
    if budget <= 0:
        return None
    key = day.isoformat() if isinstance(day, date) else (day or utc_day())
    async with database.transaction() as session:
        dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
            else sqlite.insert
        statement = dialect_insert(LlmUsage).values(guild_id=guild_id, day=key, count=1)
        counted = statement.on_conflict_do_update(
            index_elements=[LlmUsage.guild_id, LlmUsage.day],
            set_={"count": LlmUsage.count + 1},
            where=LlmUsage.count < budget,
        ).returning(LlmUsage.count)
        value = (await session.execute(counted)).scalar_one_or_none()
        return int(value) if value is not None else None


async def llm_usage(database: Database, guild_id: int, *, day: str | date | None = None) -> int:
    key = day.isoformat() if isinstance(day, date) else (day or utc_day())
    async with database.session() as session:
        value = await session.scalar(select(LlmUsage.count).where(
            LlmUsage.guild_id == guild_id, LlmUsage.day == key))
        return int(value or 0)
