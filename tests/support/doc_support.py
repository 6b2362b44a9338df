"""Reading the Markdown docs in tests: tables, inline code, tested code blocks, links, anchors."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_TESTED_BLOCK = re.compile(r"<!-- tested: ([\w-]+) -->\s*\n```[\w-]*\n(.*?)\n```", re.DOTALL)
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_ENV_LINE = re.compile(r"^#?[ \t]*([A-Z][A-Z0-9_]+)=", re.MULTILINE)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def doc(name: str) -> str:
    return read(DOCS / name)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def code_blocks(text: str) -> list[str]:
    return [match.group(0) for match in _FENCE.finditer(text)]


def split_row(line: str) -> list[str]:
    """The cells of a table row; a `|` inside inline code does not split."""
    cells: list[str] = []
    current: list[str] = []
    in_code = False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    cells.append("".join(current).strip())
    return cells


def table_rows(text: str) -> list[list[str]]:
    """Every body row of every table (header and separator rows left out)."""
    rows: list[list[str]] = []
    lines = without_code_blocks(text).splitlines()
    for index, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        if re.fullmatch(r"\s*\|[\s|:-]+\|?\s*", line):
            continue  # separator
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if re.fullmatch(r"\s*\|[\s|:-]+\|?\s*", following):
            continue  # header
        rows.append(split_row(line))
    return rows


def inline_code(text: str) -> list[str]:
    return _INLINE_CODE.findall(text)


def only_code(cell: str) -> str | None:
    """The content of a cell that is exactly one inline code span, else None."""
    match = re.fullmatch(r"`([^`]+)`", cell.strip())
    return match.group(1) if match else None


def marked_blocks(text: str) -> dict[str, str]:
    """Code blocks marked `<!-- tested: name -->`, by name."""
    return {name: body for name, body in _TESTED_BLOCK.findall(text)}


def links(text: str) -> list[str]:
    return _LINK.findall(without_code_blocks(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for heading in _HEADING.findall(without_code_blocks(text)):
        base = slug(heading)
        name, count = base, 1
        while name in found:  # GitHub numbers repeated headings: name, name-1, name-2
            name = f"{base}-{count}"
            count += 1
        found.add(name)
    return found


def env_file_variables(text: str) -> set[str]:
    """`NAME=` lines of an env file, commented-out ones included (`# NAME=`)."""
    return set(_ENV_LINE.findall(text))
