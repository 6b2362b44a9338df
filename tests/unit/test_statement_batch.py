"""StatementBatch: concurrent calls leave together, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from store.statement_batch import CLOSED, StatementBatch


class Refused(Exception):
    pass


class FakeStatement:
    """Answers `call * 10`; a call < 0 is refused, and refuses the whole batch it is in."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.singles: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def many(self, calls: Sequence[int]) -> list[int]:
        self.batches.append(list(calls))
        await self.gate.wait()
        if any(call < 0 for call in calls):
            raise Refused()
        return [call * 10 for call in calls]

    async def one(self, call: int) -> int:
        self.singles.append(call)
        await self.gate.wait()
        if call < 0:
            raise Refused()
        return call * 10


def batcher(statement: FakeStatement, **options: Any) -> StatementBatch[int, int]:
    return StatementBatch(statement.many, statement.one, lambda call: (abs(call),), **options)


async def test_a_lone_call_is_sent_at_once_alone() -> None:
    statement = FakeStatement()
    assert await batcher(statement).submit(3) == 30
    assert (statement.batches, statement.singles) == ([], [3])


async def behind_a_first_call(statement: FakeStatement, calls: list[int], **options: Any
                              ) -> tuple[StatementBatch[int, int], list[asyncio.Task[int]]]:
    """A first call is out (held at the gate) while `calls` arrive; then the gate opens."""
    batch = batcher(statement, max_in_flight=1, **options)
    statement.gate.clear()
    first = asyncio.create_task(batch.submit(1))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(batch.submit(call)) for call in calls]
    await asyncio.sleep(0)
    return batch, [first, *tasks]


async def test_calls_arriving_while_one_is_out_leave_together() -> None:
    statement = FakeStatement()
    _batch, tasks = await behind_a_first_call(statement, list(range(2, 10)))
    statement.gate.set()
    assert await asyncio.gather(*tasks) == [call * 10 for call in range(1, 10)]
    assert statement.singles == [1]
    assert statement.batches == [list(range(2, 10))]


async def test_a_failed_batch_gives_each_call_its_own_answer() -> None:
    statement = FakeStatement()
    _batch, tasks = await behind_a_first_call(statement, [2, -3, 4])
    statement.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert (results[0], results[1], results[3]) == (10, 20, 40)
    assert isinstance(results[2], Refused)
    assert statement.batches == [[2, -3, 4]]
    assert statement.singles == [1, 2, -3, 4]  # the batch again, one by one, in order


async def test_a_call_sharing_a_key_runs_alone_after_the_batch() -> None:
    statement = FakeStatement()
    _batch, tasks = await behind_a_first_call(statement, [5, 6, 5, 7])
    statement.gate.set()
    assert await asyncio.gather(*tasks) == [10, 50, 60, 50, 70]
    assert statement.batches == [[5, 6, 7]]
    assert statement.singles == [1, 5]


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    statement = FakeStatement()
    _batch, (first, gone, stays) = await behind_a_first_call(statement, [2, 3])
    gone.cancel()
    statement.gate.set()
    assert (await first, await stays) == (10, 30)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert (statement.batches, statement.singles) == ([], [1, 3])  # the gone call: not sent


async def test_a_batch_failed_for_an_outage_fails_its_calls_at_once() -> None:
    statement = FakeStatement()
    _batch, (first, *tasks) = await behind_a_first_call(
        statement, [2, -3, 4], outage=lambda error: isinstance(error, Refused))
    statement.gate.set()
    assert await first == 10
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, Refused) for result in results)
    assert statement.singles == [1]  # no call of the failed batch was tried alone


class Away(Exception):
    """The database cannot be reached: every attempt hangs for a while, then fails."""


async def hang_then_fail(_calls: object) -> Any:
    await asyncio.sleep(0.01)
    raise Away()


async def test_an_outage_answers_every_waiting_caller_after_one_attempt() -> None:
    attempts = []

    async def many(calls: Sequence[int]) -> list[int]:
        attempts.append(len(calls))
        return await hang_then_fail(calls)  # type: ignore[no-any-return]

    async def one(call: int) -> int:
        attempts.append(1)
        return await hang_then_fail(call)  # type: ignore[no-any-return]

    batch: StatementBatch[int, int] = StatementBatch(
        many, one, lambda call: (call,), outage=lambda error: isinstance(error, Away))
    async with asyncio.timeout(5):  # a caller left waiting fails the test instead of hanging it
        results = await asyncio.gather(*[batch.submit(call) for call in range(600)],
                                       return_exceptions=True)
    assert all(isinstance(result, Away) for result in results)
    # The attempts out at once (two) answer everyone: without this, the 600 would have waited
    # in turn, 64 at a time, each batch for its own timeout.
    assert len(attempts) <= 2


async def test_a_lone_call_failed_by_an_outage_answers_the_calls_queued_behind_it() -> None:
    statement = FakeStatement()
    batch = StatementBatch(statement.many, statement.one, lambda call: (abs(call),),
                           max_in_flight=1, outage=lambda error: isinstance(error, Refused))
    statement.gate.clear()
    first = asyncio.create_task(batch.submit(-1))  # sent alone; fails for an "outage"
    await asyncio.sleep(0)
    queued = [asyncio.create_task(batch.submit(call)) for call in (2, 3)]
    await asyncio.sleep(0)
    statement.gate.set()
    async with asyncio.timeout(5):
        results = await asyncio.gather(first, *queued, return_exceptions=True)
    assert all(isinstance(result, Refused) for result in results)
    assert (statement.singles, statement.batches) == ([-1], [])


async def test_close_lets_the_batch_out_finish_and_fails_what_waits() -> None:
    statement = FakeStatement()
    batch, (first, *queued) = await behind_a_first_call(statement, [2, 3])
    closing = asyncio.create_task(batch.close(grace=5))
    await asyncio.sleep(0)
    with pytest.raises(ConnectionError, match=CLOSED):
        await batch.submit(4)  # refused at once: the database is closing
    statement.gate.set()
    await closing
    assert await first == 10
    # The queued calls were sent by the task draining: close waits for it.
    assert await asyncio.gather(*queued) == [20, 30]


async def test_close_cancels_a_batch_that_outlives_its_grace() -> None:
    statement = FakeStatement()
    batch, tasks = await behind_a_first_call(statement, [2, 3])  # the gate never opens
    await batch.close(grace=0.01)
    async with asyncio.timeout(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
