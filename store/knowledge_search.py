"""Ranked full-text search over the knowledge base's passages.

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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from store.database import Database

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


