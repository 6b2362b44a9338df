"""Concurrent calls of one statement, sent as one multi-row statement.

Sixteen webhook deliveries in flight at once are sixteen statements, sixteen commits and
sixteen round trips; sent as one statement over arrays they cost PostgreSQL about a third of
the CPU per delivery and the server one round trip (measured in bench/webhooks.py). Batching is
natural, never timed: a call is sent at once when fewer than `max_in_flight` batches are out,
and calls that arrive meanwhile leave together when one comes back, so a lone call waits for
nothing and a busy replica sends bigger batches.

A batch is all or nothing (one statement). When it fails (a refused effect, a conflict), every
call of it is run again alone, in order, so each gets its own answer: exactly what it would
have got without batching. A failure that says the database is away now (`outage`) is the
answer of every call waiting, at once: sent on, each would wait out the same timeout in turn
(two batches out at a time), so the last caller's 503 would come many timeouts late. A call
whose caller has gone (a cancelled request) is not sent.

A call that touches a key an earlier call of the batch touches (the same delivery, the same
row) is run alone after the batch, so the two keep their order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

CLOSED = "the database is closing"
Call = TypeVar("Call")
Answer = TypeVar("Answer")


@dataclass
class _Pending(Generic[Call, Answer]):
    call: Call
    future: asyncio.Future[Answer]


class StatementBatch(Generic[Call, Answer]):
    """`run_batch(calls)` answers a list in the same order; `run_one(call)` answers one."""

    def __init__(self, run_batch: Callable[[Sequence[Call]], Awaitable[list[Answer]]],
                 run_one: Callable[[Call], Awaitable[Answer]],
                 keys: Callable[[Call], Sequence[Hashable]], *, max_batch: int = 64,
                 max_in_flight: int = 2,
                 outage: Callable[[Exception], bool] = lambda _error: False) -> None:
        self._run_batch = run_batch
        self._outage = outage
        self._run_one = run_one
        self._keys = keys
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[_Pending[Call, Answer]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def submit(self, call: Call) -> Answer:
        if self._closed:
            raise ConnectionError(CLOSED)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(call, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self, grace: float = 5.0) -> None:
        """Refuse new calls; let the batches out finish for up to `grace` seconds, then cancel
        them. Every call not answered by then gets ConnectionError (an outage: 503)."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in set(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_waiting([], ConnectionError(CLOSED))

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = [item for item in self._pending[:self._max_batch]
                         if not item.future.done()]  # a caller gone is not sent
                del self._pending[:self._max_batch]
                try:
                    await self._send(batch)
                except BaseException:  # cancelled (close): no caller may wait forever
                    self._fail_waiting(batch, ConnectionError(CLOSED))
                    raise
        finally:
            self._in_flight -= 1

    async def _send(self, batch: list[_Pending[Call, Answer]]) -> None:
        together, alone = self._split(batch)
        if len(together) == 1:
            alone.insert(0, together.pop())
        if together:
            try:
                answers = await self._run_batch([item.call for item in together])
            except Exception as exc:
                if self._outage(exc):
                    self._fail_waiting(together + alone, exc)
                    return
                alone = together + alone  # nothing of the batch was written: one by one
            else:
                for item, answer in zip(together, answers, strict=True):
                    _settle(item.future, answer)
        for index, item in enumerate(alone):
            if item.future.done():
                continue
            try:
                _settle(item.future, await self._run_one(item.call))
            except Exception as exc:
                _fail(item.future, exc)
                if self._outage(exc):
                    self._fail_waiting(alone[index + 1:], exc)
                    return

    def _fail_waiting(self, items: list[_Pending[Call, Answer]], error: Exception) -> None:
        """`error` for these calls and for every call still queued."""
        for item in [*items, *self._pending]:
            _fail(item.future, error)
        self._pending.clear()

    def _split(self, batch: list[_Pending[Call, Answer]]
               ) -> tuple[list[_Pending[Call, Answer]], list[_Pending[Call, Answer]]]:
        """Calls whose keys no other call of the batch shares, and the rest (run alone)."""
        seen: set[Hashable] = set()
        together, alone = [], []
        for item in batch:
            keys = self._keys(item.call)
            if seen.isdisjoint(keys):
                together.append(item)
            else:
                alone.append(item)
            seen.update(keys)
        return together, alone


def _fail(future: asyncio.Future[Answer], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


def _settle(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():  # its caller may have gone (a cancelled request)
        future.set_result(answer)
