"""Sanitizers for text that leaves the process: logs (here), embeds and LLM prompts.

Every function runs in linear time on any input: each regex either matches a fixed character
class or is anchored to the start of a token run by a look-behind, so no input makes the engine
rescan the same characters from many starting points.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable

LOG_MESSAGE_LIMIT = 8000
MASK = "***"

_LINE_BREAK_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe_log_characters() -> str:
    """Control (Cc), format (Cf: bidi, zero-width), line and paragraph separators."""
    return "".join(
        chr(code) for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"}
    )


_UNSAFE_LOG_CHARS = _unsafe_log_characters()
_UNSAFE_LOG_RE = re.compile("[" + re.escape(_UNSAFE_LOG_CHARS) + "]")
_UNSAFE_EXCEPT_NEWLINE_RE = re.compile(
    "[" + re.escape(_UNSAFE_LOG_CHARS.replace("\n", "")) + "]"
)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _LINE_BREAK_ESCAPES:
        return _LINE_BREAK_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# Tokens are masked only when they start a run of token characters (the look-behinds), which
# keeps every pattern linear: a run is scanned from its start once per pattern.
_B64URL = r"A-Za-z0-9_\-"
_TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = (
    # JSON Web Tokens (header and payload are base64url JSON, so both begin with "eyJ").
    re.compile(rf"(?<![{_B64URL}])eyJ[{_B64URL}]*+\.eyJ[{_B64URL}]*+\.[{_B64URL}]*+"),
    # Discord bot tokens: base64 user id . timestamp . HMAC.
    re.compile(rf"(?<![{_B64URL}.])[{_B64URL}]{{23,28}}\.[{_B64URL}]{{6,7}}\.[{_B64URL}]{{27,}}+"),
    # Standard Webhooks secrets.
    re.compile(r"(?<![A-Za-z0-9_])whsec_[A-Za-z0-9+/=]++"),
    # This project's scoped API keys (`bk_<prefix>_<secret>`) and OpenAI-style keys.
    re.compile(rf"(?<![{_B64URL}])bk_[A-Za-z0-9]{{8}}_[{_B64URL}]++"),
    re.compile(rf"(?<![{_B64URL}])sk-[{_B64URL}]{{16,}}+"),
    # Credentials in URLs: scheme://user:password@host.
    re.compile(r"(?<=://)[^\s/@:]++:[^\s/@]++(?=@)"),
    # Authorization header values.
    re.compile(r"(?i)(?<=bearer )[^\s\"']++"),
)

_registered_secrets: list[str] = []
_MIN_REGISTERED_SECRET_LENGTH = 8


def register_secrets(values: Iterable[str]) -> None:
    """Mask these exact values wherever they appear (the configured secrets).

    Values shorter than 8 characters are ignored: masking them would hide ordinary words.
    """
    for value in values:
        if len(value) >= _MIN_REGISTERED_SECRET_LENGTH and value not in _registered_secrets:
            _registered_secrets.append(value)
    _registered_secrets.sort(key=len, reverse=True)


def mask_secrets(text: str) -> str:
    """Replace known secret values and anything shaped like a token with `***`."""
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"…[+{len(text) - limit} chars]"
    return text[: max(limit - len(marker), 0)] + marker


def safe_log_message(text: str, limit: int = LOG_MESSAGE_LIMIT) -> str:
    """Make text safe for one log line.

    Control and format characters (every `str.splitlines` break, bidi controls, zero-width
    characters) become visible escapes such as `\\n` or `\\u202e`, so one record cannot forge
    another or reorder what a reader sees. Secrets and token-shaped strings are masked, then
    the result is cut to `limit` characters.
    """
    # Mask first: an escape inserted inside a token would otherwise hide it from the patterns.
    text = mask_secrets(str(text)[: limit * 2 + 1024])
    return truncate(_UNSAFE_LOG_RE.sub(_escape_char, text), limit)


def safe_log_block(text: str, limit: int = LOG_MESSAGE_LIMIT * 4) -> str:
    """Like `safe_log_message` but keeps newlines: for tracebacks, which span lines."""
    text = mask_secrets(str(text)[: limit * 2 + 1024])
    return truncate(_UNSAFE_EXCEPT_NEWLINE_RE.sub(_escape_char, text), limit)


# --- Embeds ---------------------------------------------------------------------------------

# Discord's embed limits (characters).
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

_ZERO_WIDTH_SPACE = "\u200b"
_ZERO_WIDTH_JOINER = "\u200d"  # kept: it joins emoji sequences
# Characters a backslash escapes in Discord markdown; the first group is escaped anywhere, the
# rest only where they start a line (headings, `-#` subtext, lists, quotes).
_INLINE_MARKDOWN = frozenset("\\*_~|`[]")
_ESCAPABLE = _INLINE_MARKDOWN | frozenset("#->+.()")
_LINE_START_MARKDOWN = re.compile(r"(?m)^([ \t]*+)(?:([#>+-])|(\d++)\.)")

_EMBED_DROP_RE = re.compile(
    "["
    + re.escape("".join(c for c in _UNSAFE_LOG_CHARS if c not in "\n\t" + _ZERO_WIDTH_JOINER))
    + "]"
)
_LINE_BREAKS_RE = re.compile("\r\n?|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_GAP = r"[\s\u200d]*+"
_DANGEROUS_SCHEME_RE = re.compile(
    r"(?i)\b(?:"
    + "|".join(_GAP.join(word) for word in ("javascript", "vbscript", "data", "file", "blob"))
    + r")" + _GAP + r":\S*+"
)
LINK_REMOVED = "[link removed]"


# An escape already in place (backslash + escapable) is one token and kept as it is, which makes
# escaping idempotent; a lone markdown character gets its backslash.
_MARKDOWN_TOKEN_RE = re.compile(
    "\\\\[" + re.escape("".join(sorted(_ESCAPABLE))) + "]|["
    + re.escape("".join(sorted(_INLINE_MARKDOWN - {"\\"}))) + "]"
)


def _escape_token(match: re.Match[str]) -> str:
    token = match.group()
    return token if len(token) == 2 else "\\" + token


def _escape_markdown(text: str) -> str:
    """Backslash-escape markdown; an escape already in place is kept, so this is idempotent."""
    return _LINE_START_MARKDOWN.sub(_escape_line_start, _MARKDOWN_TOKEN_RE.sub(_escape_token, text))


def _escape_line_start(match: re.Match[str]) -> str:
    indent, symbol, number = match.groups()
    return f"{indent}\\{symbol}" if symbol else f"{indent}{number}\\."


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
    """Make user text safe to show in an embed: nothing pings, nothing renders as markup.

    Control and format characters go (newlines stay), dangerous link schemes are replaced,
    every `@` is followed by a zero-width space (so `@everyone`, `@here` and `<@id>` never
    mention, nested forms included), `</` cannot form a command mention, markdown is escaped,
    and the result fits `limit` without a dangling escape. Applying it twice changes nothing.
    """
    text = _LINE_BREAKS_RE.sub("\n", str(text)[: limit * 8 + 1024])
    text = _EMBED_DROP_RE.sub("", text)
    text = _DANGEROUS_SCHEME_RE.sub(LINK_REMOVED, text)
    for opener in ("</", "<#"):  # command and channel mentions
        text = text.replace(opener, opener[0] + _ZERO_WIDTH_SPACE + opener[1])
    text = text.replace("@", "@" + _ZERO_WIDTH_SPACE)
    return _truncate_embed(_escape_markdown(text), limit)


def safe_code_block(text: str, limit: int = 1900) -> str:
    """Tool output (Alembic, logs) for a Discord code block: controls and secrets removed,
    fences broken, cut to fit one message."""
    cleaned = safe_log_block(text, limit * 2).replace("```", "`\u200b``")
    return "```\n" + _truncate_embed(cleaned, limit - 8) + "\n```"
