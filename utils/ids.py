"""Identifiers as the outside world sends them: parsed strictly, ASCII only.

`str.isdigit()` and `int()` accept far more than ASCII digits (`²`, Arabic-Indic and
full-width digits), so every id and number from a client goes through here.
"""

from __future__ import annotations

import re

# A Supabase user id (a UUID) or another service's user id: letters, digits, `_` and `-`.
USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_DISCORD_ID = 2**63 - 1  # Discord snowflakes fit a signed 64-bit integer
_ASCII_DIGITS = re.compile(r"[0-9]{1,20}")


def parse_discord_id(text: str) -> int | None:
    """The id in `text` when it is 1-20 ASCII digits with a value in 1..2**63-1, else None."""
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_DISCORD_ID else None
