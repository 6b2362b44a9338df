"""Retrieval quality of the knowledge search on the labelled set, on SQLite and PostgreSQL.

The documents of tests/data/knowledge are rendered to PDFs, extracted and indexed as a sync
would; each question of questions.json is searched and scored against the page that answers
it. Beside each backend, in the same run, a naive baseline (passages ranked by how many distinct
query words they contain) shows what the index and its ranking add.

    .venv/bin/python -m bench.knowledge_recall [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

from bench.knowledge_support import (
    knowledge_documents,
    knowledge_questions,
    temporary_database,
)
from harness.pdf_factory import make_pdf
from knowledge.pdf_text import PdfLimits, extract_document
from store import knowledge as store
from store.database import Database
from utils.logging import configure_logging

GOAL = 0.9
_WORD = re.compile(r"[^\W_]+")


async def index(database: Database, docs: dict[str, list[str]]) -> list[tuple[str, int, str]]:
    passages: list[tuple[str, int, str]] = []
    for name, pages in docs.items():
        extracted = extract_document(make_pdf(pages), name, PdfLimits())
        await store.replace_document(
            database, drive_file_id=name, name=name, md5=None, modified_time=None, size=None,
            pages=extracted.pages,
            passages=[store.PassageInput(p.page, p.text) for p in extracted.passages])
        passages.extend((name, p.page, p.text) for p in extracted.passages)
    return passages


def baseline(passages: list[tuple[str, int, str]], question: str) -> list[tuple[str, int]]:
    words = {w for w in _WORD.findall(question.lower()) if w not in store.ENGLISH_STOP_WORDS}
    scored = sorted(passages, key=lambda p: -len(words & set(_WORD.findall(p[2].lower()))))
    return [(name, page) for name, page, _ in scored[:3]]


async def measure(backend: str) -> dict[str, float]:
    docs = knowledge_documents()
    questions = knowledge_questions()
    async with temporary_database(backend) as database:
        passages = await index(database, docs)
        at1 = at3 = base3 = 0
        reciprocal = 0.0
        latencies = []
        for item in questions:
            wanted = (item["document"], int(item["page"]))
            started = time.perf_counter()
            hits, _ = await store.search(database, item["question"], limit=3)
            latencies.append(time.perf_counter() - started)
            found = [(hit.document, hit.page) for hit in hits]
            at1 += found[:1] == [wanted]
            at3 += wanted in found
            reciprocal += 1 / (found.index(wanted) + 1) if wanted in found else 0.0
            base3 += wanted in baseline(passages, item["question"])
    count = len(questions)
    return {"documents": len(docs), "passages": len(passages), "questions": count,
            "recall@1": at1 / count, "recall@3": at3 / count, "mrr@3": reciprocal / count,
            "baseline recall@3": base3 / count,
            "p50 ms": statistics.median(latencies) * 1000}


async def main(backends: list[str]) -> None:
    for backend in backends:
        result = await measure(backend)
        verdict = "meets" if result["recall@3"] >= GOAL else "MISSES"
        print(f"{backend:10} documents={result['documents']:.0f} "
              f"passages={result['passages']:.0f} questions={result['questions']:.0f} "
              f"recall@1={result['recall@1']:.3f} recall@3={result['recall@3']:.3f} "
              f"mrr@3={result['mrr@3']:.3f} (baseline recall@3 "
              f"{result['baseline recall@3']:.3f}) p50={result['p50 ms']:.1f} ms "
              f"-> {verdict} the goal {GOAL}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    arguments = parser.parse_args()
    configure_logging(level="WARNING")
    asyncio.run(main(arguments.backends.split(",")))
