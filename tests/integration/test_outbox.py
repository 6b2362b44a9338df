"""The outbox: dedupe, leases, retries with backoff, dead letters, delivered once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from delivery.outbox_worker import OutboxWorker, PermanentDeliveryError, RetryLaterError
from store import outbox
from store.database import Database
from store.models import OutboxMessage, utcnow


async def queue(database: Database, *keys: str) -> None:
    async with database.transaction() as session:
        for key in keys:
            await outbox.enqueue(session, kind="dm", target_id=1, payload={"n": key},
                                 dedupe_key=key)


async def entries(database: Database) -> list[OutboxMessage]:
    async with database.session() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_dedupe_key_queues_once(database: Database) -> None:
    await queue(database, "a", "a", "b")
    async with database.transaction() as session:
        assert not await outbox.enqueue(session, kind="dm", target_id=1, payload={},
                                        dedupe_key="a")
    assert [entry.dedupe_key for entry in await entries(database)] == ["a", "b"]


async def test_claimed_entries_are_leased_until_they_expire(database: Database) -> None:
    await queue(database, "a", "b")
    first = await outbox.claim_due(database, lease=timedelta(seconds=30))
    assert [entry.dedupe_key for entry in first] == ["a", "b"]
    assert await outbox.claim_due(database) == []
    later = utcnow() + timedelta(seconds=31)
    again = await outbox.claim_due(database, now=later)
    assert [entry.attempts for entry in again] == [2, 2]


async def test_concurrent_claimers_never_share_an_entry(database: Database) -> None:
    await queue(database, *[f"k{i}" for i in range(30)])
    results = await asyncio.gather(*[outbox.claim_due(database, limit=30) for _ in range(4)])
    ids = [entry.id for result in results for entry in result]
    assert len(ids) == len(set(ids)) == 30


async def test_failures_back_off_then_dead_letter(database: Database) -> None:
    await queue(database, "a")
    statuses = []
    moment = utcnow()
    for _ in range(3):
        moment += timedelta(hours=1)
        (entry,) = await outbox.claim_due(database, now=moment)
        statuses.append(await outbox.mark_failed(database, entry, "boom", max_attempts=3))
    assert statuses == ["pending", "pending", "dead"]
    assert await outbox.counts(database) == {"pending": 0, "sending": 0, "sent": 0, "dead": 1}
    assert outbox.backoff(1) == timedelta(seconds=2)
    assert outbox.backoff(30) == timedelta(minutes=10)


async def test_worker_waits_for_the_gateway_and_sends_each_entry_once(database: Database) -> None:
    await queue(database, "a", "b", "c")
    connected = False
    delivered: list[str] = []

    async def send(entry: OutboxMessage) -> None:
        delivered.append(entry.payload["n"])

    worker = OutboxWorker(database, send, is_connected=lambda: connected)
    assert await worker.run_once() == 0  # bot offline: nothing leaves
    connected = True
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0
    assert delivered == ["a", "b", "c"]
    assert await outbox.counts(database) == {"pending": 0, "sending": 0, "sent": 3, "dead": 0}


async def test_worker_dead_letters_permanent_failures_and_retries_others(
        database: Database) -> None:
    await queue(database, "closed-dms", "flaky")

    async def send(entry: OutboxMessage) -> None:
        if entry.payload["n"] == "closed-dms":
            raise PermanentDeliveryError("cannot send messages to this user")
        raise ConnectionResetError

    worker = OutboxWorker(database, send)
    assert await worker.run_once() == 0
    by_key = {entry.dedupe_key: entry for entry in await entries(database)}
    assert by_key["closed-dms"].status == "dead"
    assert by_key["flaky"].status == "pending"
    assert by_key["flaky"].last_error == "ConnectionResetError"
    assert by_key["flaky"].next_attempt_at > utcnow()


async def test_background_loop_delivers_when_woken(database: Database) -> None:
    delivered = asyncio.Event()

    async def send(entry: OutboxMessage) -> None:
        delivered.set()

    worker = OutboxWorker(database, send, poll_seconds=30)
    worker.start()
    try:
        await asyncio.sleep(0.05)
        await queue(database, "a")
        worker.wake()
        await asyncio.wait_for(delivered.wait(), 5)
    finally:
        await worker.stop()


async def test_replicas_claim_with_skip_locked_without_waiting(postgres_url: str) -> None:
    """Two replicas (two engines) drain at once: disjoint claims, and rows another replica is
    claiming are skipped, not waited for (FOR UPDATE SKIP LOCKED)."""
    replicas = [Database(postgres_url), Database(postgres_url)]
    try:
        async with replicas[0].engine.begin() as connection:
            await connection.exec_driver_sql("DELETE FROM outbox")
        await queue(replicas[0], *[f"s{i}" for i in range(40)])
        async with replicas[0].transaction() as session:  # replica 0 holds the first ten rows
            await session.execute(select(OutboxMessage.id).order_by(OutboxMessage.id).limit(10)
                                  .with_for_update())
            async with asyncio.timeout(2):
                taken = await outbox.claim_due(replicas[1], limit=15)
            assert len(taken) == 15
            assert min(entry.dedupe_key for entry in taken) != "s0"
        results = await asyncio.gather(*[outbox.claim_due(replica, limit=40)
                                         for replica in replicas])
        ids = [entry.id for result in results for entry in result] + [e.id for e in taken]
        assert len(ids) == len(set(ids)) == 40
    finally:
        for replica in replicas:
            await replica.dispose()


async def taken_over(database: Database) -> tuple[OutboxMessage, OutboxMessage]:
    """One entry claimed by a worker whose lease then ran out, and by the worker that took it
    over (a send stalled past the lease)."""
    await queue(database, "a")
    (stalled,) = await outbox.claim_due(database, lease=timedelta(seconds=60))
    (current,) = await outbox.claim_due(database, now=utcnow() + timedelta(seconds=61))
    assert stalled.id == current.id
    return stalled, current


async def test_a_worker_that_lost_its_lease_cannot_reopen_an_entry_sent_since(
        database: Database) -> None:
    stalled, current = await taken_over(database)
    assert await outbox.mark_sent(database, current)
    assert await outbox.mark_failed(database, stalled, "RateLimited") is None
    (entry,) = await entries(database)
    assert (entry.status, entry.last_error) == ("sent", None)  # not queued for a second send


async def test_a_worker_that_lost_its_lease_cannot_settle_an_entry_another_holds(
        database: Database) -> None:
    stalled, current = await taken_over(database)
    assert not await outbox.mark_sent(database, stalled)
    assert await outbox.mark_failed(database, stalled, "boom", permanent=True) is None
    (entry,) = await entries(database)
    assert (entry.status, entry.attempts) == ("sending", 2)
    assert await outbox.mark_failed(database, current, "boom") == "pending"  # the holder can


async def test_a_worker_whose_send_outlived_its_lease_leaves_the_entry_to_the_new_holder(
        database: Database) -> None:
    await queue(database, "a")
    taken_over_by: list[OutboxMessage] = []

    async def send(entry: OutboxMessage) -> None:  # stalls until another worker takes over
        later = entry.next_attempt_at + timedelta(seconds=1)  # our lease has run out
        taken_over_by.extend(await outbox.claim_due(database, now=later))
        assert await outbox.mark_sent(database, taken_over_by[0])
        raise ConnectionResetError

    assert await OutboxWorker(database, send).run_once() == 0
    (entry,) = await entries(database)
    assert (entry.status, entry.attempts, entry.last_error) == ("sent", 2, None)


async def test_a_send_stuck_on_discord_is_cut_off_and_the_batch_goes_on(
        database: Database) -> None:
    await queue(database, "stuck", "b", "c")
    delivered: list[str] = []

    async def send(entry: OutboxMessage) -> None:
        if entry.payload["n"] == "stuck":
            await asyncio.sleep(3600)  # discord.py sleeping on a long Retry-After
        delivered.append(entry.payload["n"])

    async with asyncio.timeout(5):
        assert await OutboxWorker(database, send, send_timeout=0.2).run_once() == 2
    assert delivered == ["b", "c"]
    stuck = (await entries(database))[0]
    assert (stuck.status, stuck.last_error) == ("pending", "TimeoutError")
    assert stuck.next_attempt_at > utcnow()  # retried later, with backoff


async def test_the_lease_outlasts_every_send_of_the_batch_timing_out(database: Database) -> None:
    await queue(database, *[f"k{i}" for i in range(4)])
    lease_left: list[timedelta] = []

    async def send(entry: OutboxMessage) -> None:
        lease_left.append(entry.next_attempt_at - utcnow())

    await OutboxWorker(database, send, send_timeout=10, batch_size=4).run_once()
    sends_before_the_last_ends = timedelta(seconds=4 * 10)
    assert len(lease_left) == 4
    assert min(lease_left) > sends_before_the_last_ends


async def test_a_rate_limited_send_waits_out_discords_retry_after(database: Database) -> None:
    await queue(database, "a")

    async def send(entry: OutboxMessage) -> None:
        raise RetryLaterError(300)

    await OutboxWorker(database, send).run_once()
    (entry,) = await entries(database)
    assert (entry.status, entry.last_error) == ("pending", "RetryLaterError")
    assert entry.next_attempt_at >= utcnow() + timedelta(seconds=299)  # not the 2 s backoff
