"""Ids and numbers from clients are ASCII digits only (issue 14, finding 1)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from utils.ids import MAX_DISCORD_ID, DiscordId, parse_ascii_int, parse_discord_id

NOT_ASCII_DIGITS = [
    "²",  # superscript two: str.isdigit() is True, int() refuses it (the 500 of the finding)
    "١",  # Arabic-Indic one: int() reads it as 1 (the finding's "guild 1")
    "５",  # full-width five: int() reads it as 5
    "𝟓",  # mathematical bold five
    "+5", "-5", " 5", "5 ", "5\n", "1_000", "0x10", "5.0", "1e3", "", "12a",
]


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_discord_ids_are_ascii_digits_only(text: str) -> None:
    assert parse_discord_id(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 1), ("123456789012345678", 123456789012345678), (str(MAX_DISCORD_ID), MAX_DISCORD_ID),
    ("0", None), (str(MAX_DISCORD_ID + 1), None), ("9" * 21, None), ("0" * 20 + "1", None),
])
def test_discord_id_range(text: str, expected: int | None) -> None:
    assert parse_discord_id(text) == expected


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_query_numbers_are_ascii_digits_only(text: str) -> None:
    assert parse_ascii_int(text) is None


def test_query_numbers_have_a_length_cap() -> None:
    assert parse_ascii_int("0") == 0
    assert parse_ascii_int("1234567") == 1234567
    assert parse_ascii_int("12345678") is None


class Body(BaseModel):
    channel: DiscordId


@pytest.mark.parametrize("value", ['"5"', "5.0", "true", "1e3", "0", str(MAX_DISCORD_ID + 1),
                                   '" 5"', '"５"', "null"])
def test_discord_ids_in_json_bodies_are_plain_integers(value: str) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate_json(f'{{"channel": {value}}}')


def test_a_discord_id_in_a_json_body() -> None:
    assert Body.model_validate_json(f'{{"channel": {MAX_DISCORD_ID}}}').channel == MAX_DISCORD_ID
