"""The outbox depth by status, kept in memory for the operator endpoints.

/api/observability and /metrics never query the database: they read this gauge, which a
background task refreshes at most once a second (and once at start-up), and report when it was
read (`as_of`). Its cost does not depend on how many rows the outbox holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from datetime import UTC, datetime

from store import outbox
from store.database import Database
from utils.logging import get_logger

log = get_logger(__name__)

REFRESH_SECONDS = 1.0


class OutboxGauge:
    def __init__(self) -> None:
        self.counts: dict[str, int] | None = None  # None until read (or while unreadable)
        self.as_of: float | None = None  # UNIX time of the last successful read

    def update(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.as_of = time.time()

    def as_of_iso(self) -> str | None:
        if self.as_of is None:
            return None
        return datetime.fromtimestamp(self.as_of, UTC).isoformat().replace("+00:00", "Z")

    async def refresh(self, database: Database) -> None:
        """Read the counts now; a failure keeps the last ones (and their `as_of`)."""
        try:
            self.update(await outbox.counts(database))
        except Exception as exc:  # the database may be away: report the last known depth
            log.warning("outbox depth unavailable", error_type=type(exc).__name__)

    async def keep_fresh(self, database: Database, every: float = REFRESH_SECONDS) -> None:
        """Refresh every `every` seconds until cancelled."""
        while True:
            await asyncio.sleep(every)
            await self.refresh(database)

    def start(self, database: Database, every: float = REFRESH_SECONDS) -> asyncio.Task[None]:
        # A context of its own: no request's ID rides along into the refresher's statements.
        return asyncio.get_running_loop().create_task(
            self.keep_fresh(database, every), name="outbox-gauge",
            context=contextvars.Context())

    @staticmethod
    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
