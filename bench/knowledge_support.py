"""What the knowledge benchmarks share: the labelled documents and questions, and throw-away
migrated databases. (PDFs and the Google stand-in come from harness/, shared with the tests.)
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from store import migrate
from store.database import Database

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
KNOWLEDGE_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "knowledge"


def knowledge_documents() -> dict[str, list[str]]:
    """The labelled set's documents (tests/data/knowledge/*.txt, pages split on `---`)."""
    return {path.stem + ".pdf": [page.strip() for page in path.read_text().split("\n---\n")]
            for path in sorted(KNOWLEDGE_DATA.glob("*.txt"))}


def knowledge_questions() -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = json.loads(
        (KNOWLEDGE_DATA / "questions.json").read_text())
    return questions


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def temporary_database(backend: str) -> AsyncIterator[Database]:
    """An empty database of `backend` (sqlite or postgresql), migrated to head, then dropped."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            await migrate.upgrade_async(url)
            database = Database(url)
            try:
                yield database
            finally:
                await database.dispose()
        return
    name = f"bench_knowledge_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rpartition("/")[0].split("://", 1)[1]
    url = f"postgresql+asyncpg://{base}/{name}"
    try:
        await migrate.upgrade_async(url)
        database = Database(url)
        try:
            yield database
        finally:
            await database.dispose()
    finally:
        await asyncio.sleep(0)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
