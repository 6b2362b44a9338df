"""The outbox: work that needs Discord, stored with the change that caused it.

A webhook commits its effect and the outbox entry in one transaction; the bot drains the outbox
while connected. Claiming (FOR UPDATE SKIP LOCKED on PostgreSQL, a compare-and-set on (status,
next_attempt_at) on SQLite) never gives several workers (replicas) the same entry, and a worker
that dies mid-send leaves a lease that expires and lets another retry it. A worker reports
back (sent, failed) only while its claim still stands, so one whose lease ran out cannot undo
or overwrite what the worker that took the entry over did.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import Database, insert_ignoring_conflicts
from store.models import OutboxMessage, utcnow

_OUTBOX = cast(Table, OutboxMessage.__table__)

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LEASE = timedelta(seconds=60)


async def enqueue(session: AsyncSession, *, kind: str, target_id: int, payload: dict[str, Any],
                  dedupe_key: str) -> bool:
    """Add an entry in the caller's transaction; False when `dedupe_key` is already queued.

    One Core statement (INSERT .. ON CONFLICT DO NOTHING RETURNING id): no savepoint and no ORM
    unit of work on a webhook's path."""
    added = (await session.execute(insert_ignoring_conflicts(session, _OUTBOX).values(
        kind=kind, target_id=target_id, payload=payload, dedupe_key=dedupe_key)
        .returning(_OUTBOX.c.id))).first()
    return added is not None


async def claim_due(database: Database, *, limit: int = 20, lease: timedelta = DEFAULT_LEASE,
                    now: datetime | None = None) -> list[OutboxMessage]:
    """Take up to `limit` due entries for this worker, each leased for `lease`.

    On PostgreSQL one statement claims them: the due rows are locked with FOR UPDATE SKIP
    LOCKED, so workers of several replicas draining at once each take different rows without
    waiting on one another. SQLite (one process) claims with a compare-and-set per entry.
    """
    now = now or utcnow()
    if database.backend == "postgresql":
        due = (select(OutboxMessage.id)
               .where(OutboxMessage.status.in_((PENDING, SENDING)),
                      OutboxMessage.next_attempt_at <= now)
               .order_by(OutboxMessage.id).limit(limit)
               .with_for_update(skip_locked=True))
        async with database.transaction() as session:
            claimed = list(await session.scalars(
                update(OutboxMessage).where(OutboxMessage.id.in_(due.scalar_subquery()))
                .values(status=SENDING, attempts=OutboxMessage.attempts + 1,
                        next_attempt_at=now + lease)
                .returning(OutboxMessage)))
        return sorted(claimed, key=lambda entry: entry.id)
    return await _claim_one_by_one(database, limit=limit, lease=lease, now=now)


async def _claim_one_by_one(database: Database, *, limit: int, lease: timedelta,
                            now: datetime) -> list[OutboxMessage]:
    claimed: list[OutboxMessage] = []
    async with database.transaction() as session:
        due = (await session.execute(
            select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.next_attempt_at)
            .where(OutboxMessage.status.in_((PENDING, SENDING)),
                   OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.id).limit(limit))).all()
    for entry_id, status, seen_at in due:
        async with database.transaction() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == entry_id, OutboxMessage.status == status,
                       OutboxMessage.next_attempt_at == seen_at)
                .values(status=SENDING, attempts=OutboxMessage.attempts + 1,
                        next_attempt_at=now + lease))
            if getattr(result, "rowcount", 0) == 1:
                entry = await session.get(OutboxMessage, entry_id)
                if entry is not None:
                    claimed.append(entry)
    return claimed


def _still_claimed_by(entry: OutboxMessage) -> ColumnElement[bool]:
    """The row as this worker's claim left it. Every claim adds one to `attempts`, so a row
    still `sending` with the attempts we were given has not been claimed by anyone since: a
    worker whose lease ran out and whose entry was taken over (or finished) matches nothing."""
    return and_(OutboxMessage.id == entry.id, OutboxMessage.status == SENDING,
                OutboxMessage.attempts == entry.attempts)


async def mark_sent(database: Database, entry: OutboxMessage) -> bool:
    """Record the delivery; False when the claim is no longer ours (nothing changed)."""
    async with database.transaction() as session:
        result = await session.execute(
            update(OutboxMessage).where(_still_claimed_by(entry))
            .values(status=SENT, sent_at=utcnow(), last_error=None))
    return getattr(result, "rowcount", 0) == 1


def backoff(attempts: int) -> timedelta:
    """2, 4, 8, ... seconds, at most 10 minutes."""
    return timedelta(seconds=min(2 ** attempts, 600))


async def mark_failed(database: Database, entry: OutboxMessage, error: str, *,
                      permanent: bool = False,
                      max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                      not_before: timedelta | None = None) -> str | None:
    """Schedule a retry with backoff (and no sooner than `not_before`), or dead-letter the
    entry; returns the new status, or None when the claim is no longer ours (another worker
    holds or finished it: nothing changed)."""
    status = DEAD if permanent or entry.attempts >= max_attempts else PENDING
    delay = max(backoff(entry.attempts), not_before or timedelta(0))
    async with database.transaction() as session:
        result = await session.execute(
            update(OutboxMessage).where(_still_claimed_by(entry))
            .values(status=status, last_error=error[:500],
                    next_attempt_at=utcnow() + delay))
    return status if getattr(result, "rowcount", 0) == 1 else None


async def counts(database: Database) -> dict[str, int]:
    """Entries per status (the outbox depth and dead letters, for observability)."""
    async with database.session() as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    found = {status: 0 for status in (PENDING, SENDING, SENT, DEAD)}
    found.update({status: int(count) for status, count in rows.all()})
    return found
