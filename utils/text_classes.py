"""Character classes shared by the sanitizers: invisible and control characters, line breaks.

Pure: the standard library only. Every regex here is a single character class or a bounded
alternation, so it runs in linear time on any input.
"""

from __future__ import annotations

import re
import unicodedata

# Every Cc, Cf, Zl and Zp character lies in planes 0, 1 and 14 (tags); scanning only those
# keeps the start-up cost of building the set to a few milliseconds instead of the whole range.
_PLANES_WITH_CONTROLS = (range(0x0, 0x20000), range(0xE0000, 0xE1000))

ZERO_WIDTH_JOINER = "\u200d"


def _unsafe_characters() -> str:
    """Control (Cc), format (Cf: bidi, zero-width), line and paragraph separators."""
    return "".join(
        chr(code) for plane in _PLANES_WITH_CONTROLS for code in plane
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"}
    )


def char_class(chars: str) -> re.Pattern[str]:
    """A character class written as ranges: ten times faster than one entry per character."""
    codes = sorted({ord(char) for char in chars})
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    body = "".join(f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}"
                   for low, high in ranges)
    return re.compile(f"[{body}]")


UNSAFE_CHARS = _unsafe_characters()
UNSAFE_RE = char_class(UNSAFE_CHARS)
UNSAFE_EXCEPT_NEWLINE_RE = char_class(UNSAFE_CHARS.replace("\n", ""))
# What text shown to people or to a model loses: every invisible or control character except
# newline, tab and the zero-width joiner (which joins emoji and Indic/Arabic letters).
_DROP_RE = char_class("".join(c for c in UNSAFE_CHARS if c not in "\n\t" + ZERO_WIDTH_JOINER))
# CRLF, a lone CR and the other breaks `str.splitlines` knows become one newline: the line
# structure stays, and no two words are glued together.
LINE_BREAKS_RE = re.compile("\r\n?|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# A run of joiners stays (as one) only between two non-ASCII characters (emoji, scripts that
# need it); next to ASCII it only hides a word from a reader or a filter ("O\u200dverride").
_JOINER_RUN_RE = re.compile("\u200d+")


def _keep_joiner(match: re.Match[str]) -> str:
    text = match.string
    before = text[match.start() - 1] if match.start() else "a"
    after = text[match.end()] if match.end() < len(text) else "a"
    return ZERO_WIDTH_JOINER if not before.isascii() and not after.isascii() else ""


def visible_text(text: str) -> str:
    """Line breaks made `\\n`, invisible and control characters dropped (tab kept), joiners
    kept only between non-ASCII characters. Idempotent."""
    text = _DROP_RE.sub("", LINE_BREAKS_RE.sub("\n", text))
    if ZERO_WIDTH_JOINER in text:
        text = _JOINER_RUN_RE.sub(_keep_joiner, text)
    return text
