"""The knowledge base's documents and passages: what each Drive file's last sync recorded.

One import surface for the knowledge base: search (store/knowledge_search.py, how both
backends rank), sync runs and their lock (store/sync_runs.py) and the LLM budget
(store/llm_usage.py) are re-exported at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, delete, func, insert, select, update

from store.database import Database
from store.models import (
    KnowledgeDocument,
    KnowledgePassage,
    utcnow,
)

# --- Documents and passages -------------------------------------------------------------------

# The longest document name the table takes (Drive allows longer ones).
DOCUMENT_NAME_MAX = cast(String, KnowledgeDocument.__table__.c["name"].type).length or 500
STATUS_INDEXED = "indexed"
STATUS_SKIPPED = "skipped"  # the file itself cannot be indexed (encrypted, corrupt, too big)
STATUS_FAILED = "failed"  # it could not be fetched this time; retried on the next sync


@dataclass(frozen=True)
class DocumentState:
    """What the last sync recorded for one Drive file (enough to tell whether it changed)."""

    id: int
    drive_file_id: str
    name: str
    md5: str | None
    modified_time: datetime | None
    status: str
    error_reason: str | None
    pages: int
    passages: int


@dataclass(frozen=True)
class PassageInput:
    page: int
    text: str


async def document_states(database: Database) -> dict[str, DocumentState]:
    """Every known document by Drive file id."""
    async with database.session() as session:
        rows = await session.execute(select(
            KnowledgeDocument.id, KnowledgeDocument.drive_file_id, KnowledgeDocument.name,
            KnowledgeDocument.md5, KnowledgeDocument.modified_time, KnowledgeDocument.status,
            KnowledgeDocument.error_reason, KnowledgeDocument.pages, KnowledgeDocument.passages))
        return {row.drive_file_id: DocumentState(**row._mapping) for row in rows}


async def _upsert_document(session: Any, drive_file_id: str, values: dict[str, Any]) -> int:
    existing = await session.scalar(select(KnowledgeDocument.id).where(
        KnowledgeDocument.drive_file_id == drive_file_id))
    if existing is None:
        result = await session.execute(insert(KnowledgeDocument).values(
            drive_file_id=drive_file_id, **values).returning(KnowledgeDocument.id))
        document_id: int = result.scalar_one()
        return document_id
    await session.execute(update(KnowledgeDocument).where(
        KnowledgeDocument.id == existing).values(**values))
    return int(existing)


async def replace_document(database: Database, *, drive_file_id: str, name: str,
                           md5: str | None, modified_time: datetime | None, size: int | None,
                           pages: int, passages: Sequence[PassageInput]) -> int:
    """Store a document's new passages in place of its old ones, in one transaction."""
    async with database.transaction() as session:
        document_id = await _upsert_document(session, drive_file_id, {
            "name": name, "md5": md5, "modified_time": modified_time, "size": size,
            "status": STATUS_INDEXED, "error_reason": None, "pages": pages,
            "passages": len(passages), "synced_at": utcnow()})
        await session.execute(delete(KnowledgePassage).where(
            KnowledgePassage.document_id == document_id))
        if passages:
            await session.execute(insert(KnowledgePassage), [
                {"document_id": document_id, "page": passage.page, "position": position,
                 "text": passage.text}
                for position, passage in enumerate(passages)])
        return document_id


async def mark_skipped(database: Database, *, drive_file_id: str, name: str, md5: str | None,
                       modified_time: datetime | None, size: int | None, reason: str) -> None:
    """This version of the file cannot be indexed: drop its old passages, keep the reason.

    Its checksum is kept, so an unchanged file is not downloaded again.
    """
    async with database.transaction() as session:
        document_id = await _upsert_document(session, drive_file_id, {
            "name": name, "md5": md5, "modified_time": modified_time, "size": size,
            "status": STATUS_SKIPPED, "error_reason": reason[:300], "pages": 0, "passages": 0,
            "synced_at": utcnow()})
        await session.execute(delete(KnowledgePassage).where(
            KnowledgePassage.document_id == document_id))


async def mark_failed(database: Database, *, drive_file_id: str, name: str, reason: str) -> None:
    """The file could not be fetched now: keep what was indexed before, retry next time."""
    async with database.transaction() as session:
        existing = await session.scalar(select(KnowledgeDocument.id).where(
            KnowledgeDocument.drive_file_id == drive_file_id))
        if existing is None:
            await session.execute(insert(KnowledgeDocument).values(
                drive_file_id=drive_file_id, name=name, md5=None, status=STATUS_FAILED,
                error_reason=reason[:300], pages=0, passages=0, synced_at=utcnow()))
        else:
            # The old checksum and passages stay: a changed file differs from it and is fetched
            # again next time; an unchanged one keeps being found meanwhile.
            await session.execute(update(KnowledgeDocument).where(
                KnowledgeDocument.id == existing).values(
                    error_reason=reason[:300], synced_at=utcnow()))


async def update_document_metadata(database: Database, *, drive_file_id: str, name: str,
                                   modified_time: datetime | None) -> None:
    """Same content (same checksum), new name or time: no download, just the new metadata."""
    async with database.transaction() as session:
        await session.execute(update(KnowledgeDocument).where(
            KnowledgeDocument.drive_file_id == drive_file_id).values(
                name=name, modified_time=modified_time))


async def remove_documents(database: Database, drive_file_ids: Iterable[str]) -> int:
    """Delete documents (and, through the cascade and triggers, their passages and index)."""
    ids = sorted(set(drive_file_ids))
    if not ids:
        return 0
    async with database.transaction() as session:
        document_ids = list(await session.scalars(select(KnowledgeDocument.id).where(
            KnowledgeDocument.drive_file_id.in_(ids))))
        if not document_ids:
            return 0
        await session.execute(delete(KnowledgePassage).where(
            KnowledgePassage.document_id.in_(document_ids)))
        await session.execute(delete(KnowledgeDocument).where(
            KnowledgeDocument.id.in_(document_ids)))
        return len(document_ids)


async def passage_count(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(KnowledgePassage)) or 0)


from store.knowledge_search import (  # noqa: E402  (one import surface for the knowledge base)
    ENGLISH_STOP_WORDS,
    SNIPPET_CHARS,
    SearchHit,
    SearchQuery,
    make_snippet,
    parse_query,
    search,
)
from store.llm_usage import consume_llm_budget, llm_usage, utc_day  # noqa: E402
from store.sync_runs import (  # noqa: E402
    DONE,
    FAILED,
    RUNNING,
    SyncAlreadyRunning,
    SyncLock,
    SyncRunInfo,
    acquire_sync_lock,
    create_sync_run,
    fail_interrupted_runs,
    get_sync_run,
    recent_sync_runs,
    running_sync_id,
    update_sync_run,
)

__all__ = [
    "DONE", "ENGLISH_STOP_WORDS", "FAILED", "RUNNING", "SNIPPET_CHARS", "SearchHit",
    "SearchQuery", "SyncAlreadyRunning", "SyncLock", "SyncRunInfo", "acquire_sync_lock",
    "consume_llm_budget", "create_sync_run", "fail_interrupted_runs", "get_sync_run", "llm_usage",
    "make_snippet", "parse_query", "recent_sync_runs", "running_sync_id", "search",
    "update_sync_run", "utc_day",
]
