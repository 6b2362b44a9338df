"""Embeds and code blocks: nothing pings, nothing renders as markup, ordinary text stays.

What changes in text a person wrote, and nothing else:
- invisible and control characters go (newlines and tabs stay; CR and CRLF become newlines);
- a dangerous scheme (`javascript:`, `vbscript:`, `data:`, `file:`, `blob:`) is replaced where it
  can become a link: a markdown link target, an angle-bracket autolink, a bare token a client
  would linkify (the scheme and its colon at the start of a token, followed by what a URL of
  that scheme has there: `data:text/html;...`, `file:/`, `blob:https:`, anything after
  `javascript:`). "File: report.pdf", "the data: 42 rows", "File:Example.jpg" and
  `https://x.example/?q=data:1` stay;
- a mention's sigil becomes its visible full-width form (`＠everyone`, `<＠123>`, `<＃123>`,
  `<／cmd:123>`): readable, and never a mention. Nothing else about `@` changes, so e-mail
  addresses stay as they are;
- markdown characters get a backslash, except inside http(s) URLs (which would break).
"""

from __future__ import annotations

import re

from utils.log_sanitize import display_block
from utils.text_classes import visible_text

# Discord's embed limits (characters).
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

LINK_REMOVED = "[link removed]"

# Characters a backslash escapes in Discord markdown; the first group is escaped anywhere, the
# rest only where they start a line (headings, `-#` subtext, lists, quotes).
INLINE_MARKDOWN = frozenset("\\*_~|`[]")
ESCAPABLE = INLINE_MARKDOWN | frozenset("#->+.()")
_LINE_START_MARKDOWN = re.compile(r"(?m)^([ \t]*+)(?:([#>+-])|(\d++)\.)")
# An escape already in place (backslash + escapable) is one token and kept as it is, which makes
# escaping idempotent; a lone markdown character gets its backslash.
_MARKDOWN_TOKEN_RE = re.compile(
    "\\\\[" + re.escape("".join(sorted(ESCAPABLE))) + "]|["
    + re.escape("".join(sorted(INLINE_MARKDOWN - {"\\"}))) + "]"
)
# What a client turns into a link: http(s) up to whitespace or `<`, not glued to a word before.
_URL_RE = re.compile(r"(?<![A-Za-z0-9])[Hh][Tt][Tt][Pp][Ss]?://[^\s<]++")

_GAP = r"[ \t]*+"  # "java script:", "jav\tascript:" (a browser drops the tab)
# Each scheme with what must follow its colon for the token to be a URL of that scheme:
# "data:text/html;base64,..." but not "data: 42 rows" or "data:42", "file:///" but not
# "File:Example.jpg", "blob:https://" but not "blob: storage".
_SCHEMES = {
    "javascript": r"\S", "vbscript": r"\S", "data": r"[\w.+-]*+/|[,;]", "file": "/",
    "blob": r"https?:|null|file:",
}
# A token starts at the text's start, after whitespace, or after what opens a link or markup:
# `(` of a markdown target, `<` of an autolink, quotes, brackets, markdown characters.
_DANGEROUS_LINK_RE = re.compile(
    r"(?i)(?<![^\s(<\[\"'`*_~|>])(?:"
    + "|".join(f"{_GAP.join(word)}{_GAP}:(?={after})" for word, after in _SCHEMES.items())
    + r")\S*+"
)
_MENTION_SIGILS = (
    (re.compile(r"(?i)@(?=everyone|here)"), "\uff20"),  # FULLWIDTH COMMERCIAL AT
    (re.compile(r"<@(?=[!&]?\d)"), "<\uff20"),  # users and roles
    (re.compile(r"<#(?=\d)"), "<\uff03"),  # channels: FULLWIDTH NUMBER SIGN
    (re.compile(r"</(?=[^<>:\n]*+:\d)"), "<\uff0f"),  # slash commands: FULLWIDTH SOLIDUS
)


def _escape_token(match: re.Match[str]) -> str:
    token = match.group()
    return token if len(token) == 2 else "\\" + token


def _escape_line_start(match: re.Match[str]) -> str:
    indent, symbol, number = match.groups()
    return f"{indent}\\{symbol}" if symbol else f"{indent}{number}\\."


def escape_markdown(text: str) -> str:
    """Backslash-escape markdown outside http(s) URLs; an escape already in place is kept, so
    this is idempotent."""
    text = _LINE_START_MARKDOWN.sub(_escape_line_start, text)
    pieces: list[str] = []
    last = 0
    for url in _URL_RE.finditer(text):
        pieces.append(_MARKDOWN_TOKEN_RE.sub(_escape_token, text[last : url.start()]))
        pieces.append(url.group())
        last = url.end()
    pieces.append(_MARKDOWN_TOKEN_RE.sub(_escape_token, text[last:]))
    return "".join(pieces)


def defuse_mentions(text: str) -> str:
    """Give every mention form a full-width sigil: visible, and never a ping."""
    for pattern, replacement in _MENTION_SIGILS:
        text = pattern.sub(replacement, text)
    return text


def _truncate_embed(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    # Never end on half an escape: an odd run of trailing backslashes would escape the "…".
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + "…"


def safe_embed_text(text: str, limit: int = EMBED_DESCRIPTION_LIMIT) -> str:
    """Make user text safe to show in an embed: nothing pings, nothing renders as markup, and
    ordinary text (links, e-mail addresses, times, "Note: ...") only gains markdown escapes.

    See the module's docstring for the exact changes. The result fits `limit` without a
    dangling escape, and applying it twice changes nothing.
    """
    text = visible_text(str(text)[: limit * 8 + 1024])
    text = _DANGEROUS_LINK_RE.sub(LINK_REMOVED, text)
    return _truncate_embed(escape_markdown(defuse_mentions(text)), limit)


def safe_code_block(text: str, limit: int = 1900) -> str:
    """Tool output (Alembic, logs) for a Discord code block: controls and secrets removed,
    fences broken, cut to fit one message."""
    cleaned = display_block(text, limit * 2).replace("```", "`\u200b``")
    return "```\n" + _truncate_embed(cleaned, limit - 8) + "\n```"
