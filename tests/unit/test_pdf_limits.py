"""Hostile PDFs cost bounded work and come out as skipped (or cut short), never as a failure
the sync would retry forever; the text that comes out is storable."""

from __future__ import annotations

import pytest

from harness.pdf_factory import content_pdf, dense_page_pdf, flate_bomb_pdf, make_pdf
from knowledge.pdf_text import PdfLimits, SkippedDocument, extract_document, extract_pages


def test_a_flate_bomb_is_skipped_as_too_large_once_decompressed() -> None:
    bomb = flate_bomb_pdf()
    assert len(bomb) < 100_000
    with pytest.raises(SkippedDocument, match="too large once decompressed"):
        extract_pages(bomb, PdfLimits())


def test_a_page_of_too_much_content_is_left_out_unread() -> None:
    # 18 KB as sent; pypdf took 10 s to read its text before this limit.
    with pytest.raises(SkippedDocument, match=r"pages too complex to read \(1\)"):
        extract_pages(dense_page_pdf(100_000), PdfLimits())


def test_the_other_pages_are_still_read() -> None:
    pdf = make_pdf(["a short page about otters", "beavers " * 2000, "a page about herons"])
    document = extract_document(pdf, "rivers.pdf", PdfLimits(max_page_content=5_000))
    assert document.truncated
    assert [passage.page for passage in document.passages] == [1, 3]


def test_reading_stops_after_its_time_budget() -> None:
    with pytest.raises(SkippedDocument, match="too slow to read"):
        extract_pages(make_pdf(["otters"]), PdfLimits(max_seconds=0))


def test_text_with_nul_comes_out_without_it() -> None:
    # pypdf keeps a 0 byte of a string as "\x00" (subset fonts do this); no table takes NUL.
    [page], _count, _truncated = extract_pages(
        content_pdf(rb"BT /F1 10 Tf 50 800 Td (wombat\000burrows) Tj ET"), PdfLimits())
    assert "\x00" not in page.text
    assert page.text.replace(" ", "") == "wombatburrows"
