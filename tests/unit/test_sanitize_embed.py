"""safe_embed_text and safe_code_block: known bypasses, everyday text, and properties."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.embed_sanitize import ESCAPABLE
from utils.sanitize import LINK_REMOVED, safe_code_block, safe_embed_text

# A mention that would render: @everyone/@here, <@id>, <@!id>, <@&id>, <#id>, </cmd:id>.
LIVE_MENTION = re.compile(r"@(?:everyone|here)|<@[!&]?\d+>|<#\d+>|</[\w -]+:\d+>")
INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
EVERYDAY = [line for line in (Path(__file__).parent.parent / "data" / "everyday_messages.txt")
            .read_text().splitlines() if line and not line.startswith("#")]


def only_escapes_added(original: str, cleaned: str) -> bool:
    """Whether `cleaned` is `original` with backslashes inserted, each right before a markdown
    character (ESCAPABLE) of the original: nothing removed, changed or hidden."""
    reachable = {(0, 0)}
    frontier = [(0, 0)]
    while frontier:
        i, j = frontier.pop()
        if (i, j) == (len(original), len(cleaned)):
            return True
        steps = []
        if i < len(original) and j < len(cleaned) and original[i] == cleaned[j]:
            steps.append((i + 1, j + 1))
        if (i < len(original) and original[i] in ESCAPABLE and cleaned[j : j + 2]
                == "\\" + original[i]):
            steps.append((i, j + 1))
        for step in steps:
            if step not in reachable:
                reachable.add(step)
                frontier.append(step)
    return False


@pytest.mark.parametrize("text", [
    "@everyone", "@here", "hey @everyone!", "@every@everyoneone", "@@everyone", "@\u200beveryone",
    "@ever\u200byone", "<@123456789012345678>", "<@!123456789012345678>", "<@&987654321>",
    "<#123456789>", "</ban:123456789>", "@\u200d everyone", "@\ufeffhere", "＠everyone",
    "<@\u200b123>", "@everyone\n@here", "<<@123>>", "@Everyone", "</mod ban user:42>",
    "@\u200deveryone",
])
def test_no_mention_survives(text: str) -> None:
    cleaned = safe_embed_text(text)
    assert not LIVE_MENTION.search(cleaned), cleaned
    assert not INVISIBLE.search(cleaned)  # defused visibly: a full-width sigil, never a ZWSP
    assert not re.search(r"(?i)@(?:everyone|here)", cleaned)


@pytest.mark.parametrize("text", [
    "jane.doe@example.com", "write to support@example.com please", "me+tag@sub.example.org",
    "@Alex can you check?", "ping @Maria_T later",
])
def test_e_mail_addresses_and_names_are_left_alone(text: str) -> None:
    cleaned = safe_embed_text(text)
    assert cleaned.replace("\\_", "_") == text
    assert not INVISIBLE.search(cleaned)


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
    ("line one\r\nline two\rline three", "line one\nline two\nline three"),
    ("price 5-10 #1 (ok)", "price 5-10 #1 (ok)"),
    ("https://example.com/a_b?q=x*y&z=~1", "https://example.com/a_b?q=x*y&z=~1"),
    ("see **https://example.com/a_b**", "see \\*\\*https://example.com/a_b**"),
])
def test_markdown_is_escaped_and_newlines_kept(text: str, expected: str) -> None:
    assert safe_embed_text(text) == expected


@pytest.mark.parametrize("text", [
    "javascript:alert(1)", "JavaScript:alert(1)", "java\u200bscript:alert(1)",
    "java script:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "vbscript:msgbox",
    "file:///etc/passwd", "[x](javascript:alert(1))", "jav\tascript:x", "blob:https://x",
    "<javascript:alert(1)>", "[x](<javascript:alert(1)>)", "**javascript:alert(1)**",
    "click data:,hello", "(file:/etc/shadow)", "'vbscript:x'", "Ja\u200dvaScript:x",
])
def test_dangerous_link_schemes_are_removed(text: str) -> None:
    cleaned = safe_embed_text(text)
    squeezed = re.sub(r"[\s\u200b\u200d\\]", "", cleaned).lower()
    for scheme in ("javascript:", "vbscript:", "data:", "file:/", "blob:"):
        assert scheme not in squeezed
    assert LINK_REMOVED.strip("[]") in cleaned


@pytest.mark.parametrize("text", [
    "Here is the data: 42 rows", "File: report.pdf", "I learned Java Script: loops today",
    "File:Example.jpg is on the wiki", "https://example.com/search?q=data:text/html&x=file:/a",
    "https://example.com/?next=javascript:void(0)", "data:42 from the export", "blob: storage",
])
def test_a_word_before_a_colon_is_not_a_link(text: str) -> None:
    cleaned = safe_embed_text(text)
    assert LINK_REMOVED not in cleaned.replace("\\", "")
    assert cleaned == text


@pytest.mark.parametrize("message", EVERYDAY)
def test_everyday_messages_only_gain_markdown_escapes(message: str) -> None:
    cleaned = safe_embed_text(message)
    assert only_escapes_added(message, cleaned), cleaned
    assert LINK_REMOVED not in cleaned.replace("\\", "")


def test_the_everyday_table_is_large_and_covers_the_usual_shapes() -> None:
    assert len(EVERYDAY) >= 200
    joined = "\n".join(EVERYDAY)
    for shape in (r"https://\S+\?\S+", r"\w@\w+\.\w+", r"\b\d{1,2}:\d{2}\b", r"^Note: ",
                  r"`[^`]+`", r"^- ", r"^\d\. "):
        assert re.search(shape, joined, re.MULTILINE), shape


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
    assert "\u200b" not in cleaned


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="@<\r\x0b\x0c\x1c\x1d"
                                      "\x1e\x85"), max_size=200))
def test_ascii_text_without_mentions_only_gains_escapes(text: str) -> None:
    visible = "".join(c for c in text if c in "\n\t" or 32 <= ord(c) < 127)
    cleaned = safe_embed_text(visible)
    if LINK_REMOVED not in cleaned.replace("\\", ""):
        assert only_escapes_added(visible, cleaned), (visible, cleaned)
