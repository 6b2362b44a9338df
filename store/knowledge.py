"""Every SQL statement of the knowledge base: documents, passages, search, sync runs, LLM usage.

Search has one interface, `search(database, query, limit, offset) -> (hits, total)`, over two
indexes that migration 0004 creates: FTS5 (bm25) on SQLite, a generated tsvector with a GIN
index (`websearch_to_tsquery`, `ts_rank_cd`) on PostgreSQL. User text never reaches either query
language as syntax: it is cut into words here, and each word or phrase is bound as a parameter
(PostgreSQL) or written as a double-quoted FTS5 string (SQLite), which only holds letters and
digits. Both backends rank with the same three tiers, so they agree on what comes first:

1. the passage holds the query's words as one phrase (stop words may sit in between), or a
   phrase the user quoted,
2. it holds every word,
3. it holds some of them;

within a tier, by the backend's relevance (bm25 or ts_rank_cd, mapped onto 0..1).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store.database import Database
from store.models import (
    DriveSyncRun,
    KnowledgeDocument,
    KnowledgePassage,
    LlmUsage,
    utcnow,
)

# --- Documents and passages -------------------------------------------------------------------

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


# --- Search -----------------------------------------------------------------------------------

# PostgreSQL's `english` stop words (tsearch_data/english.stop): dropped from queries on both
# backends, so SQLite (whose FTS5 keeps every word) matches what PostgreSQL matches.
_ENGLISH_STOP_WORDS = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here
there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now
"""
ENGLISH_STOP_WORDS = frozenset(_ENGLISH_STOP_WORDS.split())

MAX_QUERY_CHARS = 500
MAX_QUERY_TERMS = 16
MAX_PHRASE_WORDS = 12
_WORD = re.compile(r"[^\W_]+")
_QUERY_TOKEN = re.compile(r'(?:(?<!\S)-)?"[^"]*"?|\S+')


@dataclass(frozen=True)
class SearchQuery:
    """A user's query cut into words: nothing of it is ever parsed as query syntax.

    `terms`: distinct words that count (stop words dropped); `phrases`: quoted phrases the user
    asked for; `excluded`: words after a `-`; `phrase`: the query's words in order (for the
    exact-phrase tier), when there are at least two.
    """

    terms: tuple[str, ...]
    phrases: tuple[str, ...]
    excluded: tuple[str, ...]
    phrase: str | None

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases


def parse_query(raw: str) -> SearchQuery:
    """Cut user text into words, quoted phrases and `-excluded` words (web-search style)."""
    normalized = unicodedata.normalize("NFKC", raw[:MAX_QUERY_CHARS * 2]).lower()
    normalized = normalized[:MAX_QUERY_CHARS]
    terms: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    ordered: list[str] = []
    for match in _QUERY_TOKEN.finditer(normalized):
        token = match.group()
        negative = token.startswith("-") and len(token) > 1
        body = token[1:] if negative else token
        words = _WORD.findall(body)
        if not words:
            continue
        if negative:
            excluded.extend(word for word in words if word not in ENGLISH_STOP_WORDS)
            continue
        ordered.extend(words)
        if body.startswith('"') and len(words) > 1:
            phrases.append(" ".join(words[:MAX_PHRASE_WORDS]))
        terms.extend(word for word in words if word not in ENGLISH_STOP_WORDS)
    unique_terms = tuple(dict.fromkeys(terms))[:MAX_QUERY_TERMS]
    unique_phrases = tuple(dict.fromkeys(phrases))[:4]
    phrase = " ".join(ordered[:MAX_PHRASE_WORDS]) if len(ordered) >= 2 else None
    if phrase is not None and not any(w not in ENGLISH_STOP_WORDS for w in phrase.split()):
        phrase = None
    return SearchQuery(unique_terms, unique_phrases,
                       tuple(dict.fromkeys(excluded))[:MAX_QUERY_TERMS], phrase)


def _fts_string(words: str) -> str:
    """An FTS5 string (a phrase when it has several words). Words hold only letters/digits."""
    assert '"' not in words
    return f'"{words}"'


def fts5_match_expressions(query: SearchQuery) -> tuple[str, str, str | None]:
    """The FTS5 MATCH strings for (some words, every word, a phrase)."""
    words = [_fts_string(term) for term in query.terms]
    phrases = [_fts_string(phrase) for phrase in query.phrases]
    any_match = " OR ".join(words + phrases)
    if query.excluded:
        any_match = f"({any_match}) NOT ({' OR '.join(map(_fts_string, query.excluded))})"
    all_match = " AND ".join(words) or any_match
    wanted = ([query.phrase] if query.phrase else []) + list(query.phrases)
    phrase = " OR ".join(_fts_string(p) for p in dict.fromkeys(wanted)) or None
    return any_match, all_match, phrase


@dataclass(frozen=True)
class SearchHit:
    """One passage found. `as_dict()` is the API's item: document, page, snippet, score."""

    document: str
    page: int
    snippet: str
    score: float
    text: str
    document_id: int
    passage_id: int

    def as_dict(self) -> dict[str, Any]:
        return {"document": self.document, "page": self.page, "snippet": self.snippet,
                "score": self.score}


SNIPPET_CHARS = 240


def make_snippet(passage: str, query: SearchQuery, limit: int = SNIPPET_CHARS) -> str:
    """Plain text around the first matched word, cut on word boundaries, `…` where cut."""
    flat = " ".join(passage.split())
    if len(flat) <= limit:
        return flat
    lowered = flat.lower()
    positions = []
    for word in (*query.terms, *(p.split()[0] for p in query.phrases)):
        stem = word[:max(4, len(word) - 2)]
        found = re.search(rf"(?<![^\W_]){re.escape(stem)}", lowered)
        if found:
            positions.append(found.start())
    center = min(positions) if positions else 0
    start = max(0, center - limit // 3)
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < center else start
    end = start + limit
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start else end
    return ("…" if start else "") + flat[start:end].strip() + ("…" if end < len(flat) else "")


def _sqlite_search_sql(with_phrase: bool) -> str:
    all_expr = ("p.id IN (SELECT rowid FROM knowledge_passages_fts "
                "WHERE knowledge_passages_fts MATCH :all_match)")
    phrase_expr = ("p.id IN (SELECT rowid FROM knowledge_passages_fts "
                   "WHERE knowledge_passages_fts MATCH :phrase)") if with_phrase else "0"
    # Only the two fixed fragments above are interpolated; user text is bound as parameters.
    return f"""
        WITH hits AS (
            SELECT rowid AS id, -bm25(knowledge_passages_fts) AS relevance
            FROM knowledge_passages_fts WHERE knowledge_passages_fts MATCH :any_match
        ), scored AS (
            SELECT p.id, p.page, p.position, p.text, d.id AS document_id, d.name,
                   (CASE WHEN {phrase_expr} THEN 2.0 ELSE 0.0 END)
                   + (CASE WHEN {all_expr} THEN 1.0 ELSE 0.0 END)
                   + max(hits.relevance, 0.0) / (1.0 + max(hits.relevance, 0.0)) AS score
            FROM hits
            JOIN knowledge_passages p ON p.id = hits.id
            JOIN knowledge_documents d ON d.id = p.document_id
        )
        SELECT * FROM scored ORDER BY score DESC, name, page, position, id
        LIMIT :limit OFFSET :offset
    """  # noqa: S608


def _postgres_queries(query: SearchQuery) -> tuple[str, str, str, dict[str, Any]]:
    """tsquery expressions (some words, every word, phrase) and their parameters.

    Each word or phrase goes through `websearch_to_tsquery` as a bound parameter, so no user text
    is ever parsed as tsquery syntax; the pieces are combined with `||` and `&&`.
    """
    params: dict[str, Any] = {}
    words = []
    for index, term in enumerate(query.terms):
        params[f"t{index}"] = term
        words.append(f"websearch_to_tsquery('english', :t{index})")
    phrases = []
    for index, phrase in enumerate(query.phrases):
        params[f"p{index}"] = f'"{phrase}"'
        phrases.append(f"websearch_to_tsquery('english', :p{index})")
    any_query = " || ".join(words + phrases)
    all_query = " && ".join(words) or any_query
    if query.excluded:
        excluded = []
        for index, word in enumerate(query.excluded):
            params[f"x{index}"] = word
            excluded.append(f"websearch_to_tsquery('english', :x{index})")
        any_query = f"({any_query}) && !!({' || '.join(excluded)})"
    if query.phrase:
        params["phrase"] = query.phrase
        phrases.insert(0, "phraseto_tsquery('english', :phrase)")
    phrase_query = " || ".join(phrases) or "NULL::tsquery"
    return any_query, all_query, phrase_query, params


def _postgres_search_sql(any_query: str, all_query: str, phrase_query: str) -> tuple[str, str]:
    base = f"""
        FROM knowledge_passages p
        JOIN knowledge_documents d ON d.id = p.document_id,
        (SELECT {any_query} AS any_q, {all_query} AS all_q, {phrase_query} AS phrase_q) q
        WHERE p.search_vector @@ q.any_q
    """
    rows = f"""
        SELECT p.id, p.page, p.position, p.text, d.id AS document_id, d.name,
               (CASE WHEN q.phrase_q IS NOT NULL AND p.search_vector @@ q.phrase_q
                     THEN 2.0 ELSE 0.0 END)
               + (CASE WHEN p.search_vector @@ q.all_q THEN 1.0 ELSE 0.0 END)
               + ts_rank_cd(p.search_vector, q.any_q, 32) AS score
        {base}
        ORDER BY score DESC, d.name, p.page, p.position, p.id
        LIMIT :limit OFFSET :offset
    """
    return rows, f"SELECT count(*) {base}"


async def search(database: Database, query: str, limit: int = 10,
                 offset: int = 0) -> tuple[list[SearchHit], int]:
    """Passages matching `query`, best first, and how many match in all.

    Any text is accepted: FTS syntax characters (quotes, `*`, `NEAR`, `-`, parentheses) are
    read as plain words. A query with no searchable word finds nothing.
    """
    parsed = parse_query(query)
    limit = max(1, min(limit, 100))
    offset = max(0, offset)
    if parsed.empty:
        return [], 0
    async with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            any_q, all_q, phrase_q, params = _postgres_queries(parsed)
            rows_sql, count_sql = _postgres_search_sql(any_q, all_q, phrase_q)
            rows = (await connection.execute(
                text(rows_sql), {**params, "limit": limit, "offset": offset})).all()
            total = await connection.scalar(text(count_sql), params)
        else:
            any_match, all_match, phrase = fts5_match_expressions(parsed)
            params = {"any_match": any_match, "all_match": all_match, "phrase": phrase,
                      "limit": limit, "offset": offset}
            sql = _sqlite_search_sql(phrase is not None)
            rows = (await connection.execute(text(sql), params)).all()
            total = await connection.scalar(text(
                "SELECT count(*) FROM knowledge_passages_fts "
                "WHERE knowledge_passages_fts MATCH :any_match"), {"any_match": any_match})
    hits = [SearchHit(document=row.name, page=row.page, snippet=make_snippet(row.text, parsed),
                      score=round(float(row.score), 4), text=row.text,
                      document_id=row.document_id, passage_id=row.id) for row in rows]
    return hits, int(total or 0)


# --- Sync runs and the sync lock ----------------------------------------------------------------

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


# --- LLM usage budget ---------------------------------------------------------------------------


def utc_day(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).date().isoformat()


async def consume_llm_budget(database: Database, guild_id: int, budget: int, *,
                             day: str | date | None = None) -> int | None:
    """Count one LLM answer for `guild_id` today if the budget allows it.

    Returns the guild's count including this answer, or None when the budget is spent (nothing
    is counted then). One atomic statement (`INSERT ... ON CONFLICT DO UPDATE ... WHERE count <
    budget RETURNING count`), so concurrent answers on several replicas never overspend.
    Direct messages count under guild 0.
    """
    if budget <= 0:
        return None
    key = day.isoformat() if isinstance(day, date) else (day or utc_day())
    async with database.transaction() as session:
        dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
            else sqlite.insert
        statement = dialect_insert(LlmUsage).values(guild_id=guild_id, day=key, count=1)
        counted = statement.on_conflict_do_update(
            index_elements=[LlmUsage.guild_id, LlmUsage.day],
            set_={"count": LlmUsage.count + 1},
            where=LlmUsage.count < budget,
        ).returning(LlmUsage.count)
        value = (await session.execute(counted)).scalar_one_or_none()
        return int(value) if value is not None else None


async def llm_usage(database: Database, guild_id: int, *, day: str | date | None = None) -> int:
    key = day.isoformat() if isinstance(day, date) else (day or utc_day())
    async with database.session() as session:
        value = await session.scalar(select(LlmUsage.count).where(
            LlmUsage.guild_id == guild_id, LlmUsage.day == key))
        return int(value or 0)
