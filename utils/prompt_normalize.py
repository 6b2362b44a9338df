"""Views of a text for prompt-injection detection. Nothing here is shown to anyone.

A disguise must not hide a phrase from the rules, so each view undoes the usual ones:
- zero-width and other format characters are dropped (inside words too), combining marks go
  (accents: "ìgnore"; zalgo), NFKD folds full-width, mathematical and ligature letters;
- look-alike letters take their Unicode TR39 prototype (`confusable_homoglyphs` ships the data
  of confusables.txt): Cyrillic "і", dotless "ı", Cherokee "Ꭵ" all become "i";
- case is folded, leetspeak digits and symbols become letters, and `l` and `i` are one letter
  (TR39 gives "I", "1" and "|" the prototype "l"): rules are compiled through the same fold.

`words`: ASCII letters and digits, one space between words, " . " between sentences, so a rule's
gap of a few words never spans two sentences. `squeezed`: the letters alone, against
"i.g.n.o.r.e" and "i g n o r e". `flat`: the folded text with its punctuation and lines, for
role prefixes and chat-template markers. `script`: for languages outside the Latin script, case
and marks folded but letters kept.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from utils.text_classes import char_class

# Digits and symbols of leetspeak (ASCII only: applied to UTF-8 bytes, which is fast), with the
# TR39 merge of "l" into "i". "@" and "$" are mapped everywhere, "!" and "|" inside words.
_LEET = bytes.maketrans(b"0134578@$l", b"oieastbasi")
_INNER_SYMBOL_RE = re.compile(r"(?<=[a-z0-9])[!|]+(?=[a-z0-9])|(?<![a-z0-9])[!|](?=[a-z]{2})")
_SENTENCE_END_RE = re.compile(r"[.!?;\n]")
_NOT_WORD_RE = re.compile(r"[^a-z0-9\x01]+")
_SENTENCE_GAP_RE = re.compile(r"(?: ?\x01)++ ?")
_NOT_UNICODE_WORD_RE = re.compile(r"[\W_]+")



@cache
def _marks_re() -> re.Pattern[str]:
    """Combining marks (Mn, Mc, Me) and format characters (Cf: zero-width, bidi, tags)."""
    planes = (range(0x0, 0x20000), range(0xE0000, 0xE1000))
    return char_class("".join(
        chr(code) for plane in planes for code in plane
        if unicodedata.category(chr(code)) in {"Mn", "Mc", "Me", "Cf"}))


@cache
def _format_re() -> re.Pattern[str]:
    """Format characters (Cf): zero-width, bidi controls, tags."""
    planes = (range(0x0, 0x20000), range(0xE0000, 0xE1000))
    return char_class("".join(chr(code) for plane in planes for code in plane
                              if unicodedata.category(chr(code)) == "Cf"))


@cache
def _skeleton_table() -> dict[int, str]:
    """Each non-ASCII character whose TR39 prototype is one ASCII letter or digit -> that
    letter, lowercase ("rn" for "m" is left out: NFKD already folds the "m" look-alikes)."""
    from confusable_homoglyphs import confusables

    table: dict[int, str] = {}
    data: dict[str, list[dict[str, str]]] = confusables.confusables_data
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            target = _marks_re().sub("", unicodedata.normalize("NFKD", glyph["c"]))
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[ord(char)] = target.lower()
                break
    return table


def _fold_latin(text: str) -> str:
    """Look-alikes to their prototypes, marks and format characters dropped, case folded.
    The prototype map runs before NFKD ("ſ" is an "f" to the eye, an "s" to NFKD) and after
    it (a letter whose accent NFKD split off)."""
    if not text.isascii():
        table = _skeleton_table()
        text = text.translate(table)
        text = _marks_re().sub("", unicodedata.normalize("NFKD", text)).casefold()
        text = text.translate(table)
    else:
        text = text.lower()
    text = _INNER_SYMBOL_RE.sub(lambda match: "i" * len(match.group()), text)
    return text.encode("utf-8", "surrogatepass").translate(_LEET).decode("utf-8", "replace")


def _words(flat: str) -> str:
    text = _NOT_WORD_RE.sub(" ", _SENTENCE_END_RE.sub("\x01", flat))
    return " " + _SENTENCE_GAP_RE.sub(" . ", text).strip(" ") + " "


def fold_script(text: str) -> str:
    """Case and marks folded, letters of every script kept, non-letters to single spaces."""
    text = _marks_re().sub("", unicodedata.normalize("NFKD", text)).casefold()
    return " " + _NOT_UNICODE_WORD_RE.sub(" ", unicodedata.normalize("NFC", text)).strip() + " "


@dataclass(frozen=True)
class Views:
    raw: str  # NFKC, format characters dropped, case folded: for chat-template markers
    flat: str
    words: str
    squeezed: str
    script: str  # empty for ASCII text


def views(text: str) -> Views:
    if text.isascii():
        raw = text.lower()
    else:
        raw = _format_re().sub("", unicodedata.normalize("NFKC", text)).casefold()
    flat = _fold_latin(text)
    words = _words(flat)
    squeezed = _NOT_WORD_RE.sub("", words.replace(".", ""))
    return Views(raw, flat, words, squeezed, "" if text.isascii() else fold_script(text))


def fold_pattern(pattern: str, *, script: bool = False) -> str:
    """Fold the literal characters of a regex the way `views` folds text (escapes, classes,
    quantifiers and group openers are copied as they are)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char in "[{":
            end = index + 1
            while end < len(pattern) and pattern[end] != ("]" if char == "[" else "}"):
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[index : end + 1])
            index = end + 1
            continue
        if pattern.startswith("(?", index):
            opener = re.match(r"\(\?(?:<?[=!]|:)", pattern[index:])
            size = len(opener.group()) if opener else 2
            out.append(pattern[index : index + size])
            index += size
            continue
        if char.isalnum() or not char.isascii():
            folded = fold_script(char).strip() if script else _fold_latin(char)
            out.append(re.escape(folded) if folded else "")
        else:
            out.append(char)
        index += 1
    return "".join(out)


# --- Wrapped payloads: base64, hex, rot13 ---------------------------------------------------

_BASE64_RE = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}+={0,2}")
_HEX_RE = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}(?:[ :,]|\\x)?){8,}+")
_ESCAPED_HEX_RE = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){8,}+")
_NOT_HEX_RE = re.compile(r"\\x|[^0-9A-Fa-f]")
_PRINTABLE_SHARE = 0.9
_MAX_DECODED = 64


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(char.isalpha() or char.isspace() for char in text)
    printable = sum(char.isprintable() or char in "\n\t" for char in text)
    if printable < _PRINTABLE_SHARE * len(text) or letters < 0.6 * len(text):
        return None
    return text


def decoded_payloads(text: str) -> list[tuple[str, str]]:
    """Readable text hidden in base64 or hex runs, and the rot13 reading of the whole text:
    (encoding, decoded text) pairs, at most a few dozen."""
    found: list[tuple[str, str]] = []
    for match in _BASE64_RE.finditer(text):
        run = match.group()
        padded = run + "=" * (-len(run) % 4)
        try:
            data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _readable(data)
        if decoded:
            found.append(("base64", decoded))
        if len(found) >= _MAX_DECODED:
            break
    for pattern in (_HEX_RE, _ESCAPED_HEX_RE):
        for match in pattern.finditer(text):
            digits = _NOT_HEX_RE.sub("", match.group())
            if len(digits) % 2:
                digits = digits[:-1]
            decoded = _readable(bytes.fromhex(digits))
            if decoded:
                found.append(("hex", decoded))
            if len(found) >= _MAX_DECODED:
                break
    rot13 = codecs.encode(text, "rot13")
    if _common_words(rot13) >= _common_words(text):  # reads at least as much like English
        found.append(("rot13", rot13))
    return found


_COMMON_WORD_RE = re.compile(
    r"(?i)\b(?:the|and|you|your|to|of|is|are|a|in|that|it|all|for|with|now|me|my|be|this"
    r"|not|no|any|from|as|on|will|what|how)\b")


def _common_words(text: str) -> int:
    return len(_COMMON_WORD_RE.findall(text))
