"""Log lines: control characters made visible, secrets masked, length bounded.

Every escape is unambiguous: a literal backslash is written `\\\\`, so the text a user typed can
never imitate an escape, and each escape has one fixed width (`\\xHH` below U+0100, `\\uHHHH`
below U+10000, `\\UHHHHHHHH` above). Every regex runs in linear time on any input: each either
matches a fixed character class or is anchored to the start of a token run by a look-behind, so
no input makes the engine rescan the same characters from many starting points.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from utils.text_classes import UNSAFE_CHARS, char_class

LOG_MESSAGE_LIMIT = 8000
MASK = "***"

_UNSAFE_LOG_CHARS = UNSAFE_CHARS  # kept under its old name: tests check it covers every plane
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# Lone surrogates too: a log stream cannot encode them, so the record would be lost.
_SURROGATES = "".join(chr(code) for code in range(0xD800, 0xE000))
_ESCAPE_RE = char_class(UNSAFE_CHARS + _SURROGATES + "\\")
_ESCAPE_EXCEPT_NEWLINE_RE = char_class(UNSAFE_CHARS.replace("\n", "") + _SURROGATES + "\\")
_UNSAFE_EXCEPT_NEWLINE_RE = char_class(UNSAFE_CHARS.replace("\n", "") + _SURROGATES)
# Width of each escape, by the letter after its backslash (to never cut one in half).
_ESCAPE_WIDTH = {"n": 2, "r": 2, "t": 2, "\\": 2, "x": 4, "u": 6, "U": 10}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def unescape_log(text: str) -> str:
    """The inverse of the escaping (for tests and for reading a log back)."""
    return re.sub(r"\\(?:([nrt\\])|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))",
                  lambda m: {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[m[1]] if m[1]
                  else chr(int(m[2] or m[3] or m[4], 16)), text)


# Each pattern starts with a literal (fast to search for) and masks a token only where it starts
# a run of token characters (the look-behind after the literal), which keeps every pattern
# linear: a run is scanned from its start once. Group 1, where present, is kept.
_B64URL = r"A-Za-z0-9_\-"
_TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = (
    # JSON Web Tokens (header and payload are base64url JSON, so both begin with "eyJ").
    re.compile(rf"eyJ(?<![{_B64URL}]eyJ)[{_B64URL}]*+\.eyJ[{_B64URL}]*+\.[{_B64URL}]*+"),
    # Standard Webhooks secrets.
    re.compile(r"whsec_(?<![A-Za-z0-9_]whsec_)[A-Za-z0-9+/=]++"),
    # This project's scoped API keys (`bk_<prefix>_<secret>`) and OpenAI-style keys.
    re.compile(rf"bk_(?<![{_B64URL}]bk_)[A-Za-z0-9]{{8}}_[{_B64URL}]++"),
    re.compile(rf"sk-(?<![{_B64URL}]sk-)[{_B64URL}]{{16,}}+"),
    # Credentials in URLs: scheme://user:password@host.
    re.compile(r"(://)[^\s/@:]++:[^\s/@]++(?=@)"),
    # Authorization header values.
    re.compile(r"(?i)(\bbearer )[^\s\"']++"),
)
# Discord bot tokens: base64 user id (23-28) . timestamp (6-7) . HMAC (27+). Found by their
# middle part, which starts with a literal dot; the first part is then checked backwards.
_DISCORD_TOKEN_TAIL = re.compile(rf"\.[{_B64URL}]{{6,7}}\.[{_B64URL}]{{27,}}+")
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _mask_discord_tokens(text: str) -> str:
    pieces: list[str] = []
    last = 0
    for match in _DISCORD_TOKEN_TAIL.finditer(text):
        start = match.start()
        while start > match.start() - 29 and start > 0 and text[start - 1] in _TOKEN_CHARS:
            start -= 1
        head = match.start() - start
        before = text[start - 1] if start > 0 else ""
        if 23 <= head <= 28 and before not in _TOKEN_CHARS and before != "." \
                and start >= last:
            pieces.append(text[last:start])
            pieces.append(MASK)
            last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


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


# Every token shape above contains one of these; text without any skips the patterns (the
# common case for a log field, so the pipeline stays cheap).
_TOKEN_TRIGGER = re.compile(r"eyJ|whsec_|bk_|sk-|://|[Bb][Ee][Aa][Rr][Ee][Rr] |\.[\w-]{6,7}\.")


def mask_secrets(text: str) -> str:
    """Replace known secret values and anything shaped like a token with `***`."""
    return _mask_token_shapes(_mask_registered(text))


def _mask_registered(text: str) -> str:
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mask_token_shapes(text: str) -> str:
    if not _TOKEN_TRIGGER.search(text):
        return text
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(r"\1" + MASK if pattern.groups else MASK, text)
    return _mask_discord_tokens(text)


def _masked_head(text: str, size: int) -> tuple[str, int]:
    """`mask_secrets` of the start of `text`, reading about `size` characters whatever its length;
    and how many characters were left out.

    Masking first, then cutting, would cost time in proportion to a hostile multi-megabyte input;
    cutting first would leave the head of a registered secret that straddles the cut (masking
    shrinks the rest, so the cut can land inside the line). So the head is read with room for
    every registered secret, and the part of the masked head that masking the whole text might
    have masked differently is dropped: at most `len(secret) - 1` characters at the end per
    secret, as `str.replace` scans left to right and each replacement only shortens the text.
    What is kept is then a prefix of what masking the whole text gives.
    """
    if len(text) <= size:
        return mask_secrets(text), 0
    unsure = sum(len(secret) - 1 for secret in _registered_secrets)
    head = text[: size + unsure]
    masked = _mask_registered(head)
    kept = masked[: max(len(masked) - unsure, 0)]
    # A token known by its shape alone (a password in a URL, a JWT), cut here, would no longer
    # have that shape: the last word of the head goes too (C-speed scans, no regex backtracking).
    kept = kept[:max(kept.rfind(" "), kept.rfind("\n"), kept.rfind("\t")) + 1]
    return _mask_token_shapes(kept), len(text) - len(head) + len(masked) - len(kept)


def _read_bound(limit: int) -> int:
    return limit * 2 + 1024  # room for masks and escapes to change the length


def _cut_marker(text: str, limit: int, left_out: int) -> str | None:
    """What ends `text` cut to `limit` characters (`left_out` were cut already), or None when
    it needs no cut."""
    if len(text) <= limit and not left_out:
        return None
    return f"…[+{max(len(text) - limit, 0) + left_out} chars]"


def truncate(text: str, limit: int, left_out: int = 0) -> str:
    """Cut to `limit` characters with a marker; `left_out` characters were already cut."""
    marker = _cut_marker(text, limit, left_out)
    if marker is None:
        return text
    return text[: max(limit - len(marker), 0)] + marker


def _truncate_escaped(text: str, limit: int, left_out: int = 0) -> str:
    """`truncate` that never cuts an escape in half (a half escape would read as another)."""
    marker = _cut_marker(text, limit, left_out)
    if marker is None:
        return text
    cut = text[: max(limit - len(marker), 0)]
    last = cut.rfind("\\", max(len(cut) - 10, 0))
    if last != -1:
        run_start = last
        while run_start > 0 and cut[run_start - 1] == "\\":
            run_start -= 1
        # Backslashes pair up from the start of a run; an odd run ends with an escape's start.
        if (last - run_start + 1) % 2:
            width = _ESCAPE_WIDTH.get(text[last + 1 : last + 2], 2)
            if last + width > len(cut):
                cut = cut[:last]
    return cut + marker


def safe_log_message(text: str, limit: int = LOG_MESSAGE_LIMIT) -> str:
    """Make text safe for one log line.

    Control and format characters (every `str.splitlines` break, bidi controls, zero-width
    characters) become visible escapes such as `\\n` or `\\u202e`, and a backslash becomes
    `\\\\`, so one record cannot forge another, reorder what a reader sees, or pass typed text
    off as an escape. Secrets and token-shaped strings are masked, then the result is cut to
    `limit` characters (never inside an escape).
    """
    # Mask first: an escape inserted inside a token would otherwise hide it from the patterns.
    text, left_out = _masked_head(str(text), _read_bound(limit))
    return _truncate_escaped(_ESCAPE_RE.sub(_escape_char, text), limit, left_out)


def safe_log_block(text: str, limit: int = LOG_MESSAGE_LIMIT * 4) -> str:
    """Like `safe_log_message` but keeps newlines: for tracebacks, which span lines."""
    text, left_out = _masked_head(str(text), _read_bound(limit))
    return _truncate_escaped(_ESCAPE_EXCEPT_NEWLINE_RE.sub(_escape_char, text), limit, left_out)


def display_block(text: str, limit: int) -> str:
    """Tool output for people (a Discord code block): controls escaped, secrets masked, newlines
    and backslashes as they are (a Windows path stays readable; no log line is at stake)."""
    text, left_out = _masked_head(str(text), _read_bound(limit))
    return truncate(_UNSAFE_EXCEPT_NEWLINE_RE.sub(_escape_char, text), limit, left_out)
