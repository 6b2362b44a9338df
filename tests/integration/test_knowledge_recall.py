"""Retrieval quality on the labelled set (tests/data/knowledge): recall@3 of the answering page."""

from __future__ import annotations

from store import knowledge as store
from store.database import Database
from tests.support.knowledge_data import documents, index_texts, questions

RECALL_GOAL = 0.9


async def test_recall_at_3(database: Database) -> None:
    docs = documents()
    labelled = questions()
    assert len(docs) >= 20
    assert len(labelled) >= 50
    await index_texts(database, docs)
    misses = []
    for item in labelled:
        hits, _ = await store.search(database, item.question, limit=3)
        if (item.document, item.page) not in {(hit.document, hit.page) for hit in hits}:
            misses.append((item.question, [(hit.document, hit.page) for hit in hits]))
    recall = 1 - len(misses) / len(labelled)
    assert recall >= RECALL_GOAL, f"recall@3 {recall:.3f} on {database.backend}: {misses}"
