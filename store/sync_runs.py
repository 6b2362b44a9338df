"""Drive sync runs (status, counts, timings) and the lock that allows one sync at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from store.database import Database
from store.models import (
    DriveSyncRun,
    utcnow,
)

SYNC_LOCK_KEY = 0x0B07_D51C  # arbitrary, fixed; differs from the migration lock
RUNNING, DONE, FAILED = "running", "done", "failed"


class SyncAlreadyRunning(Exception):
    """Another sync holds the lock (in this process or another replica)."""

    def __init__(self, sync_id: int | None) -> None:
        super().__init__("a Drive sync is already running")
        self.sync_id = sync_id


_sqlite_busy: set[str] = set()  # SQLite databases (by URL) with a sync running in this process


class SyncLock:
    """Held for one sync run; `release()` frees it (idempotent)."""

    def __init__(self, database: Database, connection: AsyncConnection | None) -> None:
        self._database = database
        self._connection = connection
        self._held = True

    async def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._connection is None:
            _sqlite_busy.discard(self._database.url)
            return
        try:
            await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                           {"key": SYNC_LOCK_KEY})
            await self._connection.commit()
        except Exception:
            # The session-level lock must not go back to the pool with the connection.
            await self._connection.invalidate()
        finally:
            await self._connection.close()


async def acquire_sync_lock(database: Database) -> SyncLock:
    """Take the sync lock without waiting, or raise SyncAlreadyRunning.

    PostgreSQL: `pg_try_advisory_lock` on a connection kept for the whole run (replicas share
    it; it is freed if the process dies). SQLite: one sync per database in this process.
    """
    if database.backend != "postgresql":
        if database.url in _sqlite_busy:
            raise SyncAlreadyRunning(await running_sync_id(database))
        _sqlite_busy.add(database.url)
        return SyncLock(database, None)
    connection = await database.engine.connect()
    try:
        acquired = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": SYNC_LOCK_KEY})
        await connection.commit()  # the lock is held by the session, not the transaction
    except BaseException:
        await connection.close()
        raise
    if not acquired:
        await connection.close()
        raise SyncAlreadyRunning(await running_sync_id(database))
    return SyncLock(database, connection)


@dataclass(frozen=True)
class SyncRunInfo:
    id: int
    status: str
    trigger: str
    files_total: int
    downloaded: int
    skipped: int
    removed: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The API's view of a run (`GET /api/v1/drive/sync/{sync_id}`)."""
        end = self.finished_at
        return {
            "sync_id": self.id, "status": self.status, "trigger": self.trigger,
            "files_total": self.files_total, "downloaded": self.downloaded,
            "skipped": self.skipped, "removed": self.removed,
            "started_at": self.started_at.isoformat(),
            "finished_at": end.isoformat() if end else None,
            "duration_seconds": round((end - self.started_at).total_seconds(), 3)
            if end else None,
            "error": self.error,
        }


_RUN_COLUMNS = (DriveSyncRun.id, DriveSyncRun.status, DriveSyncRun.trigger,
                DriveSyncRun.files_total, DriveSyncRun.downloaded, DriveSyncRun.skipped,
                DriveSyncRun.removed, DriveSyncRun.started_at, DriveSyncRun.finished_at,
                DriveSyncRun.error)


async def create_sync_run(database: Database, trigger: str) -> int:
    async with database.transaction() as session:
        result = await session.execute(insert(DriveSyncRun).values(
            status=RUNNING, trigger=trigger, files_total=0, downloaded=0, skipped=0, removed=0,
            started_at=utcnow()).returning(DriveSyncRun.id))
        run_id: int = result.scalar_one()
        return run_id


async def update_sync_run(database: Database, run_id: int, *, files_total: int,
                          downloaded: int, skipped: int, removed: int,
                          status: str | None = None, error: str | None = None) -> None:
    values: dict[str, Any] = {"files_total": files_total, "downloaded": downloaded,
                              "skipped": skipped, "removed": removed}
    if status is not None:
        values.update(status=status, finished_at=utcnow(),
                      error=error[:500] if error else None)
    async with database.transaction() as session:
        await session.execute(update(DriveSyncRun).where(DriveSyncRun.id == run_id)
                              .values(**values))


async def get_sync_run(database: Database, run_id: int) -> SyncRunInfo | None:
    async with database.session() as session:
        row = (await session.execute(select(*_RUN_COLUMNS).where(
            DriveSyncRun.id == run_id))).first()
        return SyncRunInfo(**row._mapping) if row else None


async def recent_sync_runs(database: Database, limit: int = 10) -> list[SyncRunInfo]:
    async with database.session() as session:
        rows = await session.execute(select(*_RUN_COLUMNS).order_by(
            DriveSyncRun.id.desc()).limit(limit))
        return [SyncRunInfo(**row._mapping) for row in rows]


async def running_sync_id(database: Database) -> int | None:
    async with database.session() as session:
        value = await session.scalar(select(func.max(DriveSyncRun.id)).where(
            DriveSyncRun.status == RUNNING))
        return int(value) if value is not None else None


async def fail_interrupted_runs(database: Database, except_id: int) -> int:
    """Runs still `running` while this process holds the lock died with their process."""
    async with database.transaction() as session:
        result = await session.execute(update(DriveSyncRun).where(
            DriveSyncRun.status == RUNNING, DriveSyncRun.id != except_id).values(
                status=FAILED, finished_at=utcnow(), error="interrupted (process stopped)"))
        return int(getattr(result, "rowcount", 0) or 0)


