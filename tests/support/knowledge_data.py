"""The labelled retrieval set (tests/data/knowledge) and a helper to index PDFs directly.

Each `*.txt` is one document: pages separated by a line holding only `---`, paragraphs by blank
lines. `questions.json` lists `{"question", "document", "page"}`: the page that answers it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.pdf_factory import make_pdf
from knowledge.pdf_text import PdfLimits, extract_document
from store import knowledge as store
from store.database import Database

DATA = Path(__file__).resolve().parent.parent / "data" / "knowledge"


@dataclass(frozen=True)
class Question:
    question: str
    document: str
    page: int


def documents() -> dict[str, list[str]]:
    """PDF name -> page texts."""
    found = {}
    for path in sorted(DATA.glob("*.txt")):
        pages = [page.strip() for page in path.read_text().split("\n---\n")]
        found[path.stem + ".pdf"] = pages
    return found


def questions() -> list[Question]:
    raw = json.loads((DATA / "questions.json").read_text())
    return [Question(item["question"], item["document"], int(item["page"])) for item in raw]


async def index_pdf(database: Database, name: str, data: bytes,
                    drive_file_id: str | None = None) -> int:
    """Extract and store a PDF as the sync would (without Drive)."""
    extracted = extract_document(data, name, PdfLimits())
    return await store.replace_document(
        database, drive_file_id=drive_file_id or f"id-{name}", name=name, md5=None,
        modified_time=None, size=len(data), pages=extracted.pages,
        passages=[store.PassageInput(p.page, p.text) for p in extracted.passages])


async def index_texts(database: Database, docs: dict[str, list[str]]) -> None:
    for name, pages in docs.items():
        await index_pdf(database, name, make_pdf(pages))
