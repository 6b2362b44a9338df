"""Text out of PDFs (pypdf), page by page, under caps; then passages of about 800 characters.

A PDF that cannot be used raises `SkippedDocument(reason)`: too large, too many pages,
encrypted (and not openable with an empty password), corrupt, or without any text (a scan).
Text past `max_chars` is dropped (the start of the document is still indexed). Extraction is
CPU-bound: `extract_passages` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from utils.logging import get_logger

log = get_logger(__name__)

# pypdf reports every oddity of a damaged file as a warning on its own logger; the sync logs one
# line per skipped file instead. (Set once here: changing it per call would race between threads.)
if logging.getLogger("pypdf").level == logging.NOTSET:
    logging.getLogger("pypdf").setLevel(logging.ERROR)

PASSAGE_TARGET_CHARS = 800
PASSAGE_MAX_CHARS = 1200


class SkippedDocument(Exception):
    """This PDF is not indexed; `reason` is a short, loggable word or phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PdfLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pages: int = 500
    max_chars: int = 2_000_000


@dataclass(frozen=True)
class PageText:
    number: int  # 1-based
    text: str


@dataclass(frozen=True)
class Passage:
    title: str
    page: int
    text: str


@dataclass(frozen=True)
class ExtractedDocument:
    pages: int
    passages: list[Passage]
    truncated: bool


def extract_pages(data: bytes, limits: PdfLimits) -> tuple[list[PageText], int, bool]:
    """(pages with text, number of pages, truncated) or SkippedDocument."""
    if len(data) > limits.max_bytes:
        raise SkippedDocument("too large")
    if b"%PDF-" not in data[:1024]:
        raise SkippedDocument("not a PDF")
    try:
        return _read(data, limits)
    except SkippedDocument:
        raise
    except (FileNotDecryptedError, PermissionError):
        raise SkippedDocument("encrypted") from None
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            AssertionError, RecursionError, OSError, UnicodeError, ZeroDivisionError) as exc:
        raise SkippedDocument(f"corrupt ({type(exc).__name__})") from None


def _read(data: bytes, limits: PdfLimits) -> tuple[list[PageText], int, bool]:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:  # owner-password-only PDFs open for reading with an empty user password
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except (FileNotDecryptedError, NotImplementedError, PdfReadError):
            opened = False
        if not opened:
            raise SkippedDocument("encrypted")
    count = len(reader.pages)
    if count > limits.max_pages:
        raise SkippedDocument(f"too many pages ({count})")
    pages: list[PageText] = []
    budget = limits.max_chars
    truncated = False
    for number, page in enumerate(reader.pages, start=1):
        if budget <= 0:
            truncated = True
            break
        text = page.extract_text() or ""
        if len(text) > budget:
            text, truncated = text[:budget], True
        budget -= len(text)
        if text.strip():
            pages.append(PageText(number, text))
    if not pages:
        raise SkippedDocument("no text (a scan?)")
    return pages, count, truncated


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=\S)")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")


def _paragraphs(text: str) -> list[str]:
    text = _HYPHEN_BREAK.sub(r"\1\2", text.replace("\r\n", "\n").replace("\r", "\n"))
    found = []
    for block in _PARAGRAPH_BREAK.split(text):
        flat = _SPACES.sub(" ", " ".join(line.strip() for line in block.splitlines())).strip()
        if flat:
            found.append(flat)
    return found


def _pieces(paragraph: str, target: int, maximum: int) -> list[str]:
    """A paragraph longer than `target` cut into sentences; a sentence longer than `maximum`
    cut on spaces."""
    if len(paragraph) <= target:
        return [paragraph]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > maximum:
            cut = sentence.rfind(" ", 0, maximum)
            cut = cut if cut > maximum // 2 else maximum
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def split_passages(title: str, pages: list[PageText], target: int = PASSAGE_TARGET_CHARS,
                   maximum: int = PASSAGE_MAX_CHARS) -> list[Passage]:
    """Passages of about `target` characters, never across pages, cut between paragraphs or
    sentences, each with the document's title and its page number."""
    passages: list[Passage] = []
    for page in pages:
        current: list[str] = []
        size = 0
        for paragraph in _paragraphs(page.text):
            for piece in _pieces(paragraph, target, maximum):
                if current and size + len(piece) + 1 > target:
                    passages.append(Passage(title, page.number, " ".join(current)))
                    current, size = [], 0
                current.append(piece)
                size += len(piece) + 1
        if current:
            passages.append(Passage(title, page.number, " ".join(current)))
    return passages


def extract_document(data: bytes, title: str, limits: PdfLimits) -> ExtractedDocument:
    """Pages, then passages (blocking: call `extract_passages` from async code)."""
    pages, count, truncated = extract_pages(data, limits)
    if truncated:
        log.info("pdf text truncated", document=title, max_chars=limits.max_chars)
    return ExtractedDocument(count, split_passages(title, pages), truncated)


async def extract_passages(data: bytes, title: str, limits: PdfLimits) -> ExtractedDocument:
    """`extract_document` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(extract_document, data, title, limits)
