"""PDFs with known text on known pages, written by hand (PDF 1.4, Helvetica, WinAnsi).

`make_pdf(["page one text", "page two text"])` puts each string on its own page, wrapped to
lines; a blank line in the text starts a new paragraph. `encrypted_pdf`, `corrupt_pdf`,
`flate_bomb_pdf` and `dense_page_pdf` make the files the sync must skip or cut short.
"""

from __future__ import annotations

import io
import textwrap
import zlib
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter

LINE_CHARS = 95
FONT_SIZE = 10
LEADING = 13


def _escape(text: str) -> bytes:
    encoded = text.encode("cp1252", errors="replace")
    return encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content_stream(text: str) -> bytes:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        if lines:
            lines.append("")
        lines.extend(textwrap.wrap(flat, LINE_CHARS) or [""])
    ops = [f"BT /F1 {FONT_SIZE} Tf {LEADING} TL 50 800 Td".encode()]
    for index, line in enumerate(lines):
        if index:
            ops.append(b"T*")
        if line:
            ops.append(b"(" + _escape(line) + b") Tj")
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(pages: Sequence[str], *, title: str | None = None) -> bytes:
    """A valid PDF whose page N (1-based) holds `pages[N-1]`."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   b"/Encoding /WinAnsiEncoding >>")
    for index, text in enumerate(pages):
        content_id = page_ids[index] + 1
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       f"/Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {content_id} 0 R >>".encode())
        stream = _content_stream(text)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream
                       + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(b"<< /Title (" + _escape(title) + b") >>")
        info_id = len(objects)
    return _assemble(objects, info_id)


def content_pdf(stream: bytes) -> bytes:
    """One page whose content stream is `stream` as given (operators, escapes and all),
    Flate-compressed as real PDFs are: for text pypdf reads oddly, and for hostile pages."""
    packed = zlib.compress(stream, 9)
    return _assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        f"<< /Length {len(packed)} /Filter /FlateDecode >>\nstream\n".encode() + packed
        + b"\nendstream"])


def flate_bomb_pdf() -> bytes:
    """About 80 KB as sent, 80 MB once inflated: past pypdf's bound for one stream (75 MB)."""
    return content_pdf(b"BT /F1 10 Tf 50 800 Td (hello) Tj ET\n" + b" " * 80_000_000)


def dense_page_pdf(operators: int) -> bytes:
    """One page of `operators` short text lines: tiny compressed, slow for pypdf to read."""
    line = b"(" + b"a" * 50 + b") Tj T* "
    return content_pdf(b"BT /F1 10 Tf 50 800 Td " + line * operators + b"ET")


def _assemble(objects: Sequence[bytes], info_id: int | None = None) -> bytes:
    """Numbered objects (1-based, the catalog first), the cross-reference table, the trailer."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R"
    if info_id is not None:
        trailer += f" /Info {info_id} 0 R"
    out.write(f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def encrypted_pdf(pages: Sequence[str], user_password: str = "letmein") -> bytes:  # noqa: S107
    """The same PDF, AES-encrypted with a user password (not readable without it)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages))))
    writer.encrypt(user_password=user_password, owner_password="owner-" + user_password,
                   algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """Starts like a PDF, then nothing a reader can use."""
    return b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n1 0 obj << /Type /Catalog /Pages 9 0 R"
