"""Identifiers as the outside world sends them: parsed strictly, ASCII only.

`str.isdigit()` and `int()` accept far more than ASCII digits (`²`, Arabic-Indic and
full-width digits), and pydantic's lax integers take `" 5"`, `"+5"`, `"1_000"`, `5.0` and `true`;
so every id and number from a client goes through here.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

# A Supabase user id (a UUID) or another service's user id: letters, digits, `_` and `-`.
USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_DISCORD_ID = 2**63 - 1  # Discord snowflakes fit a signed 64-bit integer
DISCORD_ID_PATTERN = r"^[0-9]{1,20}$"  # the text form (path segments); the value range applies too
_ASCII_DIGITS = re.compile(r"[0-9]{1,20}")
_ASCII_NUMBER = re.compile(r"[0-9]{1,18}")

# A Discord id in a JSON body: a JSON integer (never a string, float or boolean) in range.
DiscordId = Annotated[int, Field(strict=True, ge=1, le=MAX_DISCORD_ID)]


def parse_discord_id(text: str) -> int | None:
    """The id in `text` when it is 1-20 ASCII digits with a value in 1..2**63-1, else None."""
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_DISCORD_ID else None


# Discord ids passed 2**32 in 2015 and exceed JavaScript's exact integers (2**53); smaller
# integers in our JSON are counts and row ids.
SNOWFLAKE_FLOOR = 2**32


def snowflakes_as_strings(value: object) -> object:
    """`value` with every Discord-sized integer (nested in dicts and lists) as a string, so a
    JavaScript dashboard never rounds an id."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) >= SNOWFLAKE_FLOOR else value
    if isinstance(value, dict):
        return {key: snowflakes_as_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [snowflakes_as_strings(item) for item in value]
    return value


def parse_ascii_int(text: str, *, max_digits: int = 7) -> int | None:
    """A non-negative number from a query string: 1..`max_digits` ASCII digits, else None."""
    if len(text) > max_digits or not _ASCII_NUMBER.fullmatch(text):
        return None
    return int(text)
