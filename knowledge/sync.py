"""The Drive sync: list the folder, fetch what changed, drop what left, index the text.

One sync at a time, across replicas too (`store.knowledge.acquire_sync_lock`). Each run is a row
of `drive_sync_runs`, so `GET /api/v1/drive/sync/{id}` can follow it (`DriveSync.status`). A
file that cannot be fetched or read is counted and logged with its reason; it never stops the
run. Only a failure to list the folder (or to reach the database) fails the run.

    sync = DriveSync.from_settings(settings, database, secret_manager)   # None: no folder
    sync_id = await sync.start()          # 202 {"sync_id": ...}; SyncAlreadyRunning -> 409
    report = await sync.run(progress)     # in the foreground (the owner's /drive sync)
    sync.start_schedule(); ...; await sync.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from knowledge.credentials import drive_credentials_from_settings
from knowledge.drive import DriveClient, DriveFile, FileTooLarge
from knowledge.pdf_text import PdfLimits, SkippedDocument, extract_passages
from knowledge.progress import ProgressCallback, ProgressThrottle
from store import knowledge as store
from store.database import Database, is_unavailable
from store.knowledge import SyncAlreadyRunning
from utils.config import Settings
from utils.logging import get_logger
from utils.sanitize import safe_log_message
from utils.secret_manager import SecretManager

log = get_logger(__name__)

DriveFactory = Callable[[], Awaitable[DriveClient]]

__all__ = ["DriveSync", "ProgressThrottle", "SyncAlreadyRunning", "SyncReport"]



@dataclass
class SyncReport:
    """What one run did.

    `downloaded`: files fetched; `unchanged`: not fetched, same checksum as indexed;
    `skipped`: files of the folder left unindexed after the run (new skips, failed downloads,
    and files skipped before that did not change), each logged with its reason in
    `skipped_files`; `removed`: documents dropped (deleted, trashed or moved out).
    """

    sync_id: int
    status: str = store.RUNNING
    files_total: int = 0
    downloaded: int = 0
    unchanged: int = 0
    skipped: int = 0
    removed: int = 0
    passages: int = 0
    seconds: float = 0.0
    error: str | None = None
    skipped_files: list[tuple[str, str]] = field(default_factory=list)


def describe(error: BaseException) -> str:
    """A short, log-safe description of an error (type, status, masked message)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    status = getattr(error, "status", None)
    if status is None:
        status = getattr(getattr(error, "resp", None), "status", None)
    kind = type(error).__name__ + (f" {status}" if status else "")
    message = safe_log_message(str(error), 200)
    return f"{kind}: {message}" if message and not message.startswith(kind) else kind


class DriveSync:
    """Syncs one Drive folder into the knowledge base of `database`.

    `drive_factory` builds a DriveClient per run (fresh credentials, so a rotated key is used);
    `concurrency` bounds files fetched and read at once.
    """

    def __init__(self, database: Database, drive_factory: DriveFactory, *,
                 limits: PdfLimits | None = None, concurrency: int = 4,
                 interval: float = 900.0, initial_delay: float = 10.0) -> None:
        self.database = database
        self._drive_factory = drive_factory
        self._limits = limits or PdfLimits()
        self._concurrency = max(1, concurrency)
        self._interval = interval
        self._initial_delay = initial_delay
        self._background: set[asyncio.Task[SyncReport]] = set()
        self._schedule: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, database: Database,
                      secrets: SecretManager | None, **options: Any) -> DriveSync | None:
        """The sync of DRIVE_FOLDER_ID, or None when it is not set."""
        folder_id = settings.drive_folder_id
        if not folder_id:
            return None

        async def factory() -> DriveClient:
            credentials = await drive_credentials_from_settings(settings, secrets)
            return DriveClient(credentials, folder_id=folder_id,
                               max_bytes=settings.pdf_max_bytes,
                               api_endpoint=settings.drive_api_endpoint)

        limits = PdfLimits(settings.pdf_max_bytes, settings.pdf_max_pages,
                           settings.pdf_max_chars)
        options.setdefault("interval", settings.drive_sync_interval)
        return cls(database, factory, limits=limits, **options)

    # --- Running -------------------------------------------------------------------------------

    async def run(self, progress: ProgressCallback | None = None, *,
                  trigger: str = "manual") -> SyncReport:
        """Sync now and return the report; SyncAlreadyRunning if a sync holds the lock."""
        lock = await store.acquire_sync_lock(self.database)
        try:
            sync_id = await store.create_sync_run(self.database, trigger)
        except BaseException:
            await lock.release()
            raise
        return await self._run_locked(lock, sync_id, progress)

    async def start(self, progress: ProgressCallback | None = None, *,
                    trigger: str = "manual") -> int:
        """Start a sync in the background and return its id at once (for `202`).

        Raises SyncAlreadyRunning (with the running sync's id when known) instead.
        """
        lock = await store.acquire_sync_lock(self.database)
        try:
            sync_id = await store.create_sync_run(self.database, trigger)
        except BaseException:
            await lock.release()
            raise
        task = asyncio.create_task(self._run_locked(lock, sync_id, progress),
                                   name=f"drive-sync-{sync_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return sync_id

    async def status(self, sync_id: int) -> store.SyncRunInfo | None:
        """The run's row: status, counts, timings (`.as_dict()` for the API)."""
        return await store.get_sync_run(self.database, sync_id)

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._background)

    async def _run_locked(self, lock: store.SyncLock, sync_id: int,
                          progress: ProgressCallback | None) -> SyncReport:
        report = SyncReport(sync_id)
        started = time.perf_counter()
        log.info("drive sync started", sync_id=sync_id)
        try:
            await store.fail_interrupted_runs(self.database, except_id=sync_id)
            drive = await self._drive_factory()
            try:
                await self._sync(drive, report, progress)
            finally:
                await drive.close()
            report.status = store.DONE
        except asyncio.CancelledError:
            report.status, report.error = store.FAILED, "cancelled"
            raise
        except Exception as exc:
            report.status, report.error = store.FAILED, describe(exc)
            log.warning("drive sync failed", sync_id=sync_id, error=report.error)
        finally:
            report.seconds = time.perf_counter() - started
            try:
                await asyncio.shield(self._record(report, final=True))
            finally:
                await asyncio.shield(lock.release())
        log.info("drive sync finished", sync_id=sync_id, status=report.status,
                 files=report.files_total, downloaded=report.downloaded,
                 unchanged=report.unchanged, skipped=report.skipped, removed=report.removed,
                 passages=report.passages, seconds=round(report.seconds, 3))
        return report

    async def _record(self, report: SyncReport, *, final: bool = False) -> None:
        await store.update_sync_run(
            self.database, report.sync_id, files_total=report.files_total,
            downloaded=report.downloaded, skipped=report.skipped, removed=report.removed,
            status=report.status if final else None, error=report.error if final else None)

    async def _sync(self, drive: DriveClient, report: SyncReport,
                    progress: ProgressCallback | None) -> None:
        listing = await drive.list_pdfs()
        files = sorted({file.id: storable(file) for file in listing.files}.values(),
                       key=lambda file: (file.name, file.id))
        report.files_total = len(files)
        known = await store.document_states(self.database)
        if listing.complete:  # a file missing from an incomplete listing may still be there
            report.removed = await store.remove_documents(
                self.database, set(known) - {file.id for file in files})
        await self._record(report)
        await _notify(progress, 0, len(files))

        done = 0
        last_recorded = time.monotonic()
        semaphore = asyncio.Semaphore(self._concurrency)

        async def one(file: DriveFile) -> None:
            nonlocal done, last_recorded
            async with semaphore:
                await self._sync_file(drive, file, known.get(file.id), report)
            done += 1
            await _notify(progress, done, len(files))
            if time.monotonic() - last_recorded >= 1.0:
                last_recorded = time.monotonic()
                await self._record(report)

        # A task group: if the database fails, the other files stop too (and the run fails).
        async with asyncio.TaskGroup() as group:
            for file in files:
                group.create_task(one(file))

    async def _sync_file(self, drive: DriveClient, file: DriveFile,
                         state: store.DocumentState | None, report: SyncReport) -> None:
        if state is not None and _unchanged(state, file):
            if state.name != file.name or state.modified_time != file.modified_time:
                await store.update_document_metadata(
                    self.database, drive_file_id=file.id, name=file.name,
                    modified_time=file.modified_time)
            if state.status == store.STATUS_SKIPPED:
                report.skipped += 1
                report.skipped_files.append((file.name, state.error_reason or "skipped"))
            else:
                report.unchanged += 1
            return
        try:
            data = await drive.download(file)
            report.downloaded += 1
            extracted = await extract_passages(data, file.name, self._limits)
        except (FileTooLarge, SkippedDocument) as exc:
            await self._skip_version(report, file, exc.reason
                                     if isinstance(exc, SkippedDocument) else "too large")
            return
        except Exception as exc:  # one bad file never stops the run
            reason = describe(exc)
            await store.mark_failed(self.database, drive_file_id=file.id, name=file.name,
                                    reason=reason)
            self._skip(report, file, reason)
            return
        try:
            await store.replace_document(
                self.database, drive_file_id=file.id, name=file.name, md5=file.md5,
                modified_time=file.modified_time, size=file.size, pages=extracted.pages,
                passages=[store.PassageInput(p.page, p.text) for p in extracted.passages])
        except Exception as exc:
            if is_unavailable(exc):
                raise  # the database is away: every other file would fail the same way
            # One document the database refuses is that document's problem, not the run's;
            # skipped (not failed): this version would be refused again on every sync.
            await self._skip_version(report, file, f"not stored ({describe(exc)})")
            return
        report.passages += len(extracted.passages)

    async def _skip_version(self, report: SyncReport, file: DriveFile, reason: str) -> None:
        """This version of the file cannot be indexed: recorded (with its checksum, so it is
        not fetched again until it changes) and reported."""
        await store.mark_skipped(self.database, drive_file_id=file.id, name=file.name,
                                 md5=file.md5, modified_time=file.modified_time,
                                 size=file.size, reason=reason)
        self._skip(report, file, reason)

    @staticmethod
    def _skip(report: SyncReport, file: DriveFile, reason: str) -> None:
        report.skipped += 1
        report.skipped_files.append((file.name, reason))
        log.warning("drive file skipped", file_id=file.id, document=file.name, reason=reason)

    # --- Schedule and shutdown -----------------------------------------------------------------

    def start_schedule(self) -> None:
        """Sync every `interval` seconds in the background (none when the interval is 0)."""
        if self._interval <= 0 or (self._schedule is not None and not self._schedule.done()):
            return
        self._schedule = asyncio.create_task(self._scheduled(), name="drive-sync-schedule")

    async def _scheduled(self) -> None:
        await asyncio.sleep(self._initial_delay)
        while True:
            try:
                await self.run(trigger="schedule")
            except SyncAlreadyRunning:
                log.info("scheduled drive sync skipped: another sync is running")
            except Exception as exc:  # the schedule survives any one run
                log.warning("scheduled drive sync failed", error=describe(exc))
            await asyncio.sleep(self._interval)

    async def stop_schedule(self) -> None:
        task, self._schedule = self._schedule, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop the schedule and cancel background runs (they are recorded as failed)."""
        await self.stop_schedule()
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def storable(file: DriveFile) -> DriveFile:
    """The file with a name the documents table takes: no NUL, at most its column's length
    (Drive allows longer names; the id is Drive's own and is never changed)."""
    name = file.name.replace("\x00", "")
    if len(name) > store.DOCUMENT_NAME_MAX:
        name = name[:store.DOCUMENT_NAME_MAX - 1] + "…"
    return file if name == file.name else dataclasses.replace(file, name=name)


def _unchanged(state: store.DocumentState, file: DriveFile) -> bool:
    """Same content: the checksum matches (or, without checksums, the modified time)."""
    if state.status == store.STATUS_FAILED:
        return False
    if state.md5 and file.md5:
        return state.md5 == file.md5
    return state.modified_time is not None and state.modified_time == file.modified_time


async def _notify(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is None:
        return
    try:
        result = progress(done, total)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # a failed progress message never stops the sync
        log.info("drive sync progress callback failed", error=type(exc).__name__)
