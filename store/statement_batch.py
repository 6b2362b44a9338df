"""Concurrent calls of one statement, sent as one multi-row statement.

Sixteen webhook deliveries in flight at once are sixteen statements, sixteen commits and
sixteen round trips; sent as one statement over arrays they cost PostgreSQL about a third of
the CPU per delivery and the server one round trip (measured in bench/webhooks.py). Batching is
natural, never timed: a call is sent at once when fewer than `max_in_flight` batches are out,
and calls that arrive meanwhile leave together when one comes back, so a lone call waits for
nothing and a busy replica sends bigger batches.

A batch is all or nothing (one statement). When it fails (a refused effect, a conflict), every
call of it is run again alone, in order, so each gets its own answer: exactly what it would
have got without batching. A failure that says the database is away now (`retry_alone` false)
is every call's answer at once: one by one they would each wait for the same outage.

A call that touches a key an earlier call of the batch touches (the same delivery, the same
row) is run alone after the batch, so the two keep their order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

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
                 retry_alone: Callable[[Exception], bool] = lambda _error: True) -> None:
        self._run_batch = run_batch
        self._retry_alone = retry_alone
        self._run_one = run_one
        self._keys = keys
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[_Pending[Call, Answer]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, call: Call) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(call, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:self._max_batch]
                del self._pending[:self._max_batch]
                await self._send(batch)
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
                if not self._retry_alone(exc):
                    for item in together:
                        _fail(item.future, exc)
                    together = []
                alone = together + alone  # nothing of the batch was written: one by one
            else:
                for item, answer in zip(together, answers, strict=True):
                    _settle(item.future, answer)
        for item in alone:
            try:
                _settle(item.future, await self._run_one(item.call))
            except Exception as exc:
                _fail(item.future, exc)

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
