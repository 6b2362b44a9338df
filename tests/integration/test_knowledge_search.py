"""Full-text search on SQLite (FTS5) and PostgreSQL (tsvector), through one interface."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from harness.pdf_factory import make_pdf
from store import knowledge as store
from store.database import Database
from tests.support.knowledge_data import index_pdf, index_texts

DOCS = {
    "Field guide.pdf": [
        "Birds of the coast. Gulls nest on cliffs and feed on fish.",
        "Herons wait in shallow water. Egrets have white feathers.",
        "The puffin colony returns in April. Puffins dig burrows in the turf.",
    ],
    "Spacecraft.pdf": [
        "A solar sail propulsion system uses the pressure of sunlight on a thin mirror.",
        "Ion engines accelerate xenon. Chemical rockets burn fuel and oxidiser.",
    ],
    "Sailing club.pdf": [
        "The club sail was repaired. Solar panels charge the boat battery. "
        "Outboard propulsion is allowed on the lake.",
        "Members book the dinghy online. Life jackets are compulsory.",
    ],
    "Energy.pdf": [
        "Solar power. Solar farms. Solar roofs. Solar water heaters save energy.",
        "Wind turbines turn in steady breezes. Storage smooths the supply.",
    ],
}

NASTY_QUERIES = [
    '"', '""', '"unbalanced', "*", "solar*", "NEAR(solar sail)", "solar NEAR sail",
    "NEAR/2", "-", "--solar", "-solar", "(", ")", "((solar)", "solar AND", "OR", "AND NOT",
    "NOT solar", "^solar", ":", "text:solar", "'", "''", "\\", "{solar}", 'sail"s',
    "!!solar", "solar && sail", "solar || sail", "solar <-> sail", "'solar' & 'sail'",
    "solar:*", "sail | ! sail", "%", "_", "solar_sail", "ünïcödé sàil", "😀 solar",
    "the and of", "   ", "a" * 400, "solar " * 60, "\x00solar", "solar\nsail",
    "SELECT * FROM knowledge_passages; --", "'); DROP TABLE knowledge_passages; --",
]


@pytest.fixture
async def indexed(database: Database) -> Database:
    await index_texts(database, DOCS)
    return database


async def test_a_word_on_page_three_is_found_on_page_three(indexed: Database) -> None:
    hits, total = await store.search(indexed, "puffin")
    assert total == 1
    assert (hits[0].document, hits[0].page) == ("Field guide.pdf", 3)
    assert "puffin" in hits[0].snippet.lower()
    assert hits[0].as_dict().keys() == {"document", "page", "snippet", "score"}


async def test_stemming_and_case(indexed: Database) -> None:
    hits, _ = await store.search(indexed, "PUFFINS burrow")
    assert (hits[0].document, hits[0].page) == ("Field guide.pdf", 3)


async def test_the_exact_phrase_ranks_first(indexed: Database) -> None:
    for query in ("solar sail propulsion", '"solar sail propulsion"'):
        hits, total = await store.search(indexed, query)
        assert total == 3, query
        assert [hit.document for hit in hits] == [
            "Spacecraft.pdf", "Sailing club.pdf", "Energy.pdf"], query
        assert hits[0].score > hits[1].score > hits[2].score


async def test_excluded_words(indexed: Database) -> None:
    hits, _ = await store.search(indexed, "solar -sail")
    assert [hit.document for hit in hits] == ["Energy.pdf"]


async def test_pagination_and_total(indexed: Database) -> None:
    everything, total = await store.search(indexed, "solar sail propulsion", limit=10)
    first, total_first = await store.search(indexed, "solar sail propulsion", limit=2)
    rest, total_rest = await store.search(indexed, "solar sail propulsion", limit=2, offset=2)
    assert total == total_first == total_rest == 3
    assert [h.passage_id for h in first + rest] == [h.passage_id for h in everything]
    assert await store.search(indexed, "solar", offset=50) == ([], 3)


async def test_fts_syntax_in_queries_never_raises(indexed: Database) -> None:
    rng = random.Random(11)
    alphabet = [*'"*()-:^+~|&!<>\'\\{}[]%_ ', "NEAR", "AND", "OR", "NOT", "solar", "sail",
                "é", "\u202e"]
    generated = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
                 for _ in range(150)]
    for query in NASTY_QUERIES + generated:
        hits, total = await store.search(indexed, query)
        assert total >= len(hits), query
        for hit in hits:
            assert "<" not in hit.snippet or "<" in hit.text


async def test_snippets_are_plain_text_around_the_match(database: Database) -> None:
    long_text = ("Preface words fill this page. " * 30 + "The lighthouse keeper logs "
                 "every storm in a leather book. " + "Closing remarks follow here. " * 30)
    await index_pdf(database, "Long.pdf", make_pdf([long_text]))
    [hit], _ = await store.search(database, "lighthouse keeper")
    assert "lighthouse keeper" in hit.snippet
    assert len(hit.snippet) <= store.SNIPPET_CHARS + 2
    assert hit.snippet.startswith("…")
    assert hit.snippet.endswith("…")
    assert "<b>" not in hit.snippet


async def test_deleting_documents_empties_the_index(indexed: Database) -> None:
    assert await store.remove_documents(indexed, ["id-Field guide.pdf"]) == 1
    assert await store.search(indexed, "puffin") == ([], 0)
    # Replacing a document replaces its index entries.
    await index_pdf(indexed, "Energy.pdf", make_pdf(["Geothermal heat only."]))
    assert (await store.search(indexed, "turbines"))[1] == 0
    assert (await store.search(indexed, "geothermal"))[1] == 1


async def test_llm_budget_is_atomic(database: Database) -> None:
    counts = await asyncio.gather(*(store.consume_llm_budget(database, 42, 10, day="2026-01-01")
                                    for _ in range(25)))
    assert sorted(c for c in counts if c is not None) == list(range(1, 11))
    assert counts.count(None) == 15
    assert await store.llm_usage(database, 42, day="2026-01-01") == 10
    assert await store.consume_llm_budget(database, 42, 10, day="2026-01-02") == 1
    assert await store.consume_llm_budget(database, 7, 10, day="2026-01-01") == 1
    assert await store.consume_llm_budget(database, 7, 0) is None


# --- Both backends agree ------------------------------------------------------------------------

AGREEMENT_QUERIES = [
    "puffin", "solar sail propulsion", "xenon ion engines", "life jackets dinghy",
    "wind turbines storage", "white feathers", "battery", "herons shallow water",
    "sunlight mirror", "club sail repaired",
]


@pytest.fixture
async def both_backends(postgres_url: str, sqlite_template: Path,
                        tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    path = tmp_path / "agreement.db"
    shutil.copyfile(sqlite_template, path)
    lite = Database(f"sqlite+aiosqlite:///{path}")
    postgres = Database(postgres_url)
    async with postgres.engine.begin() as connection:
        await connection.execute(text("TRUNCATE knowledge_passages, knowledge_documents "
                                      "RESTART IDENTITY CASCADE"))
    yield lite, postgres
    await lite.dispose()
    await postgres.dispose()


async def test_both_backends_return_the_same_top_results(
        both_backends: tuple[Database, Database]) -> None:
    lite, postgres = both_backends
    for database in both_backends:
        await index_texts(database, DOCS)
    for query in AGREEMENT_QUERIES:
        lite_hits, lite_total = await store.search(lite, query, limit=3)
        pg_hits, pg_total = await store.search(postgres, query, limit=3)
        assert lite_total == pg_total, query
        assert (lite_hits[0].document, lite_hits[0].page) == \
            (pg_hits[0].document, pg_hits[0].page), query
        assert {(h.document, h.page) for h in lite_hits} == \
            {(h.document, h.page) for h in pg_hits}, query
