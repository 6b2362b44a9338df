"""What PostgreSQL cannot store: text with a NUL character (in `text` columns and in JSON).

SQLite would store it, so without this check the same delivery would succeed on one backend and
fail (a 500, which senders retry forever) on the other. Request models refuse such text with 422
(`refuse_unstorable` walks the parsed JSON, keys included); `store.database` refuses it again for
every statement on both backends, as the last line of defence.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"


class UnstorableText(ValueError):
    """Text with a NUL character was about to reach the database."""

    def __init__(self) -> None:
        super().__init__("text must not contain NUL characters")


def contains_nul(value: Any) -> bool:
    """True when some text in `value` (strings, dict keys, nested lists and dicts) holds a NUL."""
    pending = [value]
    while pending:  # a loop, not recursion: nesting depth is the sender's choice
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def refuse_unstorable(value: Any) -> Any:
    """`value` unchanged, or UnstorableText (a ValueError: pydantic reports it as a 422)."""
    if contains_nul(value):
        raise UnstorableText()
    return value
