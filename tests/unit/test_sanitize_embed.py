"""safe_embed_text and safe_code_block: known bypasses, and properties over any text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.sanitize import LINK_REMOVED, safe_code_block, safe_embed_text

ZWSP = "\u200b"
# A mention that would render: @everyone/@here, <@id>, <@!id>, <@&id>, <#id>, </cmd:id>.
LIVE_MENTION = re.compile(r"@(?:everyone|here)|<@[!&]?\d+>|<#\d+>|</[\w -]+:\d+>")


@pytest.mark.parametrize("text", [
    "@everyone", "@here", "hey @everyone!", "@every@everyoneone", "@@everyone", "@\u200beveryone",
    "@ever\u200byone", "<@123456789012345678>", "<@!123456789012345678>", "<@&987654321>",
    "<#123456789>", "</ban:123456789>", "@\u200d everyone", "@\ufeffhere", "＠everyone",
    "<@\u200b123>", "@everyone\n@here", "<<@123>>",
])
def test_no_mention_survives(text: str) -> None:
    cleaned = safe_embed_text(text)
    assert not LIVE_MENTION.search(cleaned), cleaned
    assert all(cleaned[i + 1 : i + 2] == ZWSP for i, c in enumerate(cleaned) if c == "@")


@pytest.mark.parametrize(("text", "expected"), [
    ("**bold**", "\\*\\*bold\\*\\*"),
    ("__under__", "\\_\\_under\\_\\_"),
    ("~~strike~~", "\\~\\~strike\\~\\~"),
    ("||spoiler||", "\\|\\|spoiler\\|\\|"),
    ("`code`", "\\`code\\`"),
    ("# Heading", "\\# Heading"),
    ("## Heading", "\\## Heading"),
    ("-# subtext", "\\-# subtext"),
    ("- item", "\\- item"),
    ("  * item", "  \\* item"),
    ("1. first", "1\\. first"),
    ("> quote", "\\> quote"),
    ("[click](https://evil.example)", "\\[click\\](https://evil.example)"),
    ("already \\*escaped\\*", "already \\*escaped\\*"),
    ("line one\nline two", "line one\nline two"),
    ("price 5-10 #1 (ok)", "price 5-10 #1 (ok)"),
])
def test_markdown_is_escaped_and_newlines_kept(text: str, expected: str) -> None:
    assert safe_embed_text(text) == expected


@pytest.mark.parametrize("text", [
    "javascript:alert(1)", "JavaScript:alert(1)", "java\u200bscript:alert(1)",
    "java script:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "vbscript:msgbox",
    "file:///etc/passwd", "[x](javascript:alert(1))", "jav\tascript:x", "blob:https://x",
])
def test_dangerous_link_schemes_are_removed(text: str) -> None:
    cleaned = safe_embed_text(text)
    squeezed = re.sub(r"[\s\u200b\u200d\\]", "", cleaned).lower()
    for scheme in ("javascript:", "vbscript:", "data:", "file:", "blob:"):
        assert scheme not in squeezed
    assert LINK_REMOVED.strip("[]") in cleaned


@pytest.mark.parametrize("limit", [1, 2, 5, 256, 1024])
def test_truncation_never_leaves_a_dangling_escape(limit: int) -> None:
    for text in ["*" * 3000, "a*" * 3000, "\\" * 3000, "@" * 3000]:
        cleaned = safe_embed_text(text, limit)
        assert len(cleaned) <= limit
        body = cleaned.removesuffix("…")
        trailing = len(body) - len(body.rstrip("\\"))
        assert trailing % 2 == 0


def test_code_block_cannot_be_closed_early() -> None:
    block = safe_code_block("ok```\n@everyone\x1b[31m token=whsec_AAAAAAAAAAAAAAAAAAAAAAAA")
    assert block.startswith("```\n")
    assert block.endswith("\n```")
    assert block.count("```") == 2
    assert "whsec_" not in block
    assert "\x1b" not in block


@settings(max_examples=300)
@given(st.text(), st.integers(min_value=1, max_value=4096))
def test_properties(text: str, limit: int) -> None:
    cleaned = safe_embed_text(text, limit)
    assert len(cleaned) <= limit
    assert safe_embed_text(cleaned, limit) == cleaned  # idempotent
    assert not LIVE_MENTION.search(cleaned)
    assert not any(ord(c) < 32 and c not in "\n\t" for c in cleaned)
    assert not any(c in cleaned for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
