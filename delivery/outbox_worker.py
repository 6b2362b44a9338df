"""Drains the outbox while the bot is connected: send, then mark sent; retry with backoff;
dead-letter what can never succeed (DMs closed, channel gone) or fails too often."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from store import outbox
from store.database import Database
from store.models import OutboxMessage
from utils.logging import get_logger
from utils.sanitize import truncate

log = get_logger(__name__)

Sender = Callable[[OutboxMessage], Awaitable[None]]

DEFAULT_SEND_TIMEOUT = 10.0  # seconds one send may take before it is retried later
DEFAULT_BATCH_SIZE = 10
LEASE_MARGIN = timedelta(seconds=20)  # the database writes after each send


def lease_for(batch_size: int, send_timeout: float) -> timedelta:
    """How long a round's claim must last. The whole batch is claimed when the round starts and
    sent one entry after another, each send cut off at `send_timeout`: the last entry is settled
    at most batch_size * send_timeout (plus the margin) later. A shorter lease would let another
    worker take over an entry still being sent here and send it twice."""
    return timedelta(seconds=batch_size * send_timeout) + LEASE_MARGIN


class PermanentDeliveryError(Exception):
    """Retrying cannot help (the user blocks DMs, the channel no longer exists)."""


class RetryLaterError(Exception):
    """Discord asks us to wait (a 429 longer than we let a send sleep): retry no sooner."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = timedelta(seconds=retry_after)


def _log_lost_lease(entry: OutboxMessage) -> None:
    # Our lease ran out and another worker took the entry over: its outcome is that worker's
    # to record, so this one leaves the entry alone.
    log.warning("outbox lease lost", entry_id=entry.id, kind=entry.kind,
                attempts=entry.attempts)


class OutboxWorker:
    def __init__(self, database: Database, send: Sender, *,
                 is_connected: Callable[[], bool] = lambda: True,
                 poll_seconds: float = 2.0,
                 max_attempts: int = outbox.DEFAULT_MAX_ATTEMPTS,
                 send_timeout: float = DEFAULT_SEND_TIMEOUT,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._database = database
        self._send = send
        self._is_connected = is_connected
        self._poll_seconds = poll_seconds
        self._max_attempts = max_attempts
        self._send_timeout = send_timeout
        self._batch_size = batch_size
        self._lease = lease_for(batch_size, send_timeout)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many entries were sent."""
        if not self._is_connected():
            return 0
        sent = 0
        for entry in await outbox.claim_due(self._database, limit=self._batch_size,
                                            lease=self._lease):
            status = await self._attempt(entry)
            if status is None:
                _log_lost_lease(entry)
            elif status == outbox.SENT:
                sent += 1
        return sent

    async def _attempt(self, entry: OutboxMessage) -> str | None:
        """Send one entry; returns the status recorded, or None when the claim was lost."""
        try:
            # Bounded, so one entry stuck on Discord cannot hold up the rest of the batch or
            # outlive the lease (see lease_for): it is retried later with backoff instead.
            async with asyncio.timeout(self._send_timeout):
                await self._send(entry)
        except PermanentDeliveryError as exc:
            return await self._dead_letter(entry, exc)
        except Exception as exc:
            return await self._retry_later(entry, exc)
        return outbox.SENT if await outbox.mark_sent(self._database, entry) else None

    async def _dead_letter(self, entry: OutboxMessage, exc: PermanentDeliveryError) -> str | None:
        status = await outbox.mark_failed(self._database, entry, str(exc), permanent=True)
        if status is not None:
            log.warning("outbox entry dead-lettered", entry_id=entry.id, kind=entry.kind,
                        reason=truncate(str(exc), 200))  # escaped once, by the logger
        return status

    async def _retry_later(self, entry: OutboxMessage, exc: Exception) -> str | None:
        # Waiting out Discord's Retry-After keeps its rate limit from using up the attempts.
        wait = exc.retry_after if isinstance(exc, RetryLaterError) else None
        status = await outbox.mark_failed(self._database, entry, type(exc).__name__,
                                          max_attempts=self._max_attempts, not_before=wait)
        if status is not None:
            log.warning("outbox delivery failed", entry_id=entry.id, kind=entry.kind,
                        attempts=entry.attempts, now=status, error_type=type(exc).__name__)
        return status

    def wake(self) -> None:
        """Deliver soon (a webhook just queued something, or the gateway came back)."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.run_once()
            except Exception as exc:  # the database may be away; try again next round
                log.warning("outbox round failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="outbox-worker")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let a round in progress finish (a sent message gets marked sent), then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._stopping = False
