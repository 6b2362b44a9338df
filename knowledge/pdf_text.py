"""Text out of PDFs (pypdf), page by page, under caps; then passages of about 800 characters.

A PDF that cannot be used raises `SkippedDocument(reason)`: too large (as sent, or once
decompressed), too many pages, encrypted (and not openable with an empty password), corrupt, or
without any text (a scan). Text past `max_chars` is dropped (the start of the document is still
indexed). Extraction is CPU-bound: `extract_passages` runs it in a worker thread, which cannot be
stopped from outside, so the work is bounded here: a page whose content is over
`max_page_content` bytes is left out (pypdf's text extraction grows faster than linearly with a
page's operators: 18 KB of compressed operators cost 10 s), and extraction stops, as truncated,
after `max_seconds`. Text comes out storable: no NUL, no lone surrogate.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from dataclasses import dataclass

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

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
    # A dense page of text is 10-100 KB of content; 1 MiB costs pypdf ~0.5 s to read.
    max_page_content: int = 1024 * 1024
    max_seconds: float = 20.0


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
    except LimitReachedError:  # a stream past pypdf's own bound once inflated (a flate bomb)
        raise SkippedDocument("too large once decompressed") from None
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError,
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
    deadline = time.monotonic() + limits.max_seconds
    left_out = 0
    out_of_time = False
    for number, page in enumerate(reader.pages, start=1):
        if budget <= 0:
            truncated = True
            break
        if time.monotonic() > deadline:
            truncated = out_of_time = True
            break
        if _content_size(page) > limits.max_page_content:
            truncated = True  # this page's text is left out; the others are still read
            left_out += 1
            continue
        text = _storable(page.extract_text() or "")
        if len(text) > budget:
            text, truncated = text[:budget], True
        budget -= len(text)
        if text.strip():
            pages.append(PageText(number, text))
    if not pages:
        raise SkippedDocument("too slow to read" if out_of_time
                              else f"pages too complex to read ({left_out})" if left_out
                              else "no text (a scan?)")
    return pages, count, truncated


def _content_size(page: PageObject) -> int:
    """Bytes of the page's content streams once decoded (cheap beside reading them)."""
    contents = page.get_contents()
    return 0 if contents is None else len(contents.get_data())


def _storable(text: str) -> str:
    """Text the database takes: NUL dropped (pypdf keeps a 0 byte of a string), a lone
    surrogate (from a broken ToUnicode map) replaced."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


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
