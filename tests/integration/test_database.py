"""The schema's own guarantees, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.database import Database
from store.models import AuditLog, DiscordLink, User, WebhookDelivery


async def add_audit_event(database: Database) -> int:
    async with database.transaction() as session:
        row = AuditLog(event="test.event", guild_id=1, details={"k": "v"})
        session.add(row)
        await session.flush()
        return row.id


@pytest.mark.parametrize(
    "statement",
    [
        lambda: update(AuditLog).values(event="rewritten"),
        lambda: delete(AuditLog),
    ],
    ids=["update", "delete"],
)
async def test_audit_log_is_append_only(database: Database, statement) -> None:  # type: ignore[no-untyped-def]
    await add_audit_event(database)
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.transaction() as session:
            await session.execute(statement())
    async with database.session() as session:
        rows = (await session.scalars(select(AuditLog))).all()
    assert [(row.event, row.details) for row in rows] == [("test.event", {"k": "v"})]


async def test_audit_log_cannot_be_truncated_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        await add_audit_event(database)
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text("TRUNCATE audit_log"))
    finally:
        await database.dispose()


async def test_times_come_back_aware_utc(database: Database) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    async with database.transaction() as session:
        session.add(User(id="u1", created_at=moment, updated_at=moment))
    async with database.session() as session:
        user = await session.get(User, "u1")
    assert user is not None
    assert user.created_at == moment
    assert user.created_at.tzinfo == UTC


async def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with database.transaction() as session:
            session.add(User(id="u1", created_at=datetime(2026, 1, 1)))


async def test_foreign_keys_cascade_on_both_backends(database: Database) -> None:
    async with database.transaction() as session:
        session.add(User(id="u1"))
        await session.flush()
        session.add(DiscordLink(discord_user_id=2**62, user_id="u1"))
    async with database.transaction() as session:
        await session.execute(delete(User).where(User.id == "u1"))
    async with database.session() as session:
        assert (await session.scalars(select(DiscordLink))).all() == []


async def test_link_to_missing_user_is_refused(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(DiscordLink(discord_user_id=5, user_id="nobody"))


async def test_webhook_delivery_id_is_unique_per_webhook(database: Database) -> None:
    async with database.transaction() as session:
        session.add(WebhookDelivery(webhook="a", delivery_id="m1", status="ok", body_sha256="0"))
        session.add(WebhookDelivery(webhook="b", delivery_id="m1", status="ok", body_sha256="0"))
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(WebhookDelivery(webhook="a", delivery_id="m1", status="ok",
                                        body_sha256="0"))


async def test_ping(database: Database) -> None:
    await database.ping()


async def test_a_pooled_connection_the_server_closed_is_replaced(postgres_url: str) -> None:
    """No pre-ping round trip: a connection the server ended while pooled is noticed locally
    and swapped for a new one before use."""
    import asyncio

    database = Database(postgres_url)
    other = Database(postgres_url)
    try:
        async with database.engine.connect() as connection:
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with other.engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_terminate_backend(:pid)"),
                                           {"pid": pid})
        await asyncio.sleep(0.2)  # the loop sees the socket close
        async with database.engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await database.dispose()
        await other.dispose()
