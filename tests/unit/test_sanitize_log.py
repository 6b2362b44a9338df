"""safe_log_message: no forged lines, no hidden characters, no secrets, bounded length."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.log_sanitize import display_block
from utils.sanitize import (
    MASK,
    mask_secrets,
    register_secrets,
    safe_log_block,
    safe_log_message,
    unescape_log,
)


def make_jwt() -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': 'user-1'})}"
    signature = hmac.new(b"k", signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.mark.parametrize(
    "secret",
    [
        make_jwt(),
        DISCORD_TOKEN,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "bk_a1b2c3d4_" + "x" * 43,
        "sk-proj-abcdefghijklmnopqrstuvwx",
    ],
)
@pytest.mark.parametrize("template", ["{}", "token={}", "got '{}' from client", "{}\nnext"])
def test_token_shapes_are_masked(secret: str, template: str) -> None:
    cleaned = safe_log_message(template.format(secret))
    assert secret not in cleaned
    assert MASK in cleaned


def test_bearer_values_and_url_passwords_are_masked() -> None:
    cleaned = safe_log_message("Authorization: Bearer opaque-token-value "
                               "dsn=postgresql://bot:hunter2pass@db:5432/x")
    assert "opaque-token-value" not in cleaned
    assert "hunter2pass" not in cleaned
    assert "db:5432" in cleaned


def test_registered_secret_values_are_masked_anywhere() -> None:
    register_secrets(["plain-configured-secret", "short"])
    assert safe_log_message("xx plain-configured-secretyy") == f"xx {MASK}yy"
    assert safe_log_message("short words stay") == "short words stay"


def test_a_secret_straddling_the_read_bound_keeps_no_part() -> None:
    # Huge inputs are read only up to a bound before masking; masking shrinks the text, so the
    # bound can fall inside the line. The head of a secret cut there must not reach it.
    secret = "S3cr3t-" + "k" * 93
    register_secrets([secret])
    limit = 8000
    read_bound = limit * 2 + 1024
    for offset in (1, 7, 50, 99):
        text = secret * 160  # masked down to 480 characters
        text += "x" * (read_bound - len(text) - offset) + secret + "y" * 5000
        for cleaned in (safe_log_message(text, limit), safe_log_block(text, limit),
                        display_block(text, limit)):
            assert "S3cr3t" not in cleaned
            assert "…[+" in cleaned  # the reader still sees that the text was cut


def test_a_token_known_by_its_shape_cut_at_the_read_bound_keeps_no_part() -> None:
    # Not registered: only its shape (a password in a URL) tells it is a secret, and a cut
    # through it leaves something of no such shape.
    secret = "S3cr3t-" + "k" * 93
    register_secrets([secret])
    limit = 8000
    read_bound = limit * 2 + 1024
    for offset in range(2, 120, 3):  # wherever the cut lands in the URL
        text = secret * 160  # masked down to 480 characters: the bound falls inside the line
        text += " " + "x" * (read_bound - len(text) - offset - 1)
        text += " postgresql://bot:Hunter2Passw0rdXYZ@db:5432/bot tail" + "y" * 5000
        for cleaned in (safe_log_message(text, limit), safe_log_block(text, limit),
                        display_block(text, limit)):
            assert "Hunt" not in cleaned
            assert "…[+" in cleaned


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("line1\nFAKE ERROR", "line1\\nFAKE ERROR"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("bell\x07", "bell\\x07"),
        ("nel\x85", "nel\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("bidi\u202eevil\u202c", "bidi\\u202eevil\\u202c"),
        ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("vt\x0bff\x0cfs\x1c", "vt\\x0bff\\x0cfs\\x1c"),
        ("ordinary text, ünïcode ✓", "ordinary text, ünïcode ✓"),
        ("tag \U000e0041 \U000e007f", "tag \\U000e0041 \\U000e007f"),
        ("tag\U000e0041\U000e007f", "tag\\U000e0041\\U000e007f"),
        ("typed \\n here", "typed \\\\n here"),
        ("C:\\Users\\x", "C:\\\\Users\\\\x"),
        ("real\nand typed \\n", "real\\nand typed \\\\n"),
    ],
)
def test_control_and_format_characters_become_visible_escapes(raw: str, expected: str) -> None:
    assert safe_log_message(raw) == expected


def test_block_keeps_newlines_but_not_other_controls() -> None:
    assert safe_log_block("Traceback\n  line\u202e\r") == "Traceback\n  line\\u202e\\r"
    assert safe_log_block("C:\\path\n\U000e0001") == "C:\\\\path\n\\U000e0001"


def test_an_escape_is_never_cut_in_half() -> None:
    for text in ["\u202e" * 50, "\\" * 100, "\U000e0041" * 30, "a\U000e0041" * 30]:
        for limit in range(20, 40):
            cleaned = safe_log_message(text, limit=limit)
            body = cleaned[: cleaned.index("…[+")]
            assert unescape_log(body) in text  # a whole number of escapes
            run = len(body) - len(body.rstrip("\\"))
            assert run % 2 == 0


def test_truncation_marks_what_was_cut() -> None:
    cleaned = safe_log_message("x" * 500, limit=100)
    assert len(cleaned) == 100
    assert cleaned.endswith("…[+400 chars]")


@given(st.text(max_size=400))
def test_properties(text: str) -> None:
    cleaned = safe_log_message(text, limit=300)
    assert len(cleaned) <= 300
    assert len(cleaned.splitlines()) <= 1
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs"} for c in cleaned)


@given(st.text(max_size=400))
def test_escapes_are_unambiguous(text: str) -> None:
    # Reading the escapes back gives exactly what was logged (after masking), so no typed text
    # can pass for an escape and no two inputs share a line.
    assert unescape_log(safe_log_message(text, limit=100_000)) == mask_secrets(text)
    assert unescape_log(safe_log_block(text, limit=100_000)) == mask_secrets(text)


@pytest.mark.parametrize(
    "adversarial",
    ["eyJ" * 350_000, "eyJa." * 200_000, "a" * 1_000_000, "whsec_" * 170_000,
     "Bearer " * 150_000, "://a:" * 200_000, ("A" * 25 + ".") * 40_000],
)
def test_adversarial_megabyte_inputs_finish(adversarial: str) -> None:
    # A quadratic pattern would take minutes here; bench/sanitize.py reports the time per MiB.
    assert len(safe_log_message(adversarial, limit=1000)) <= 1000


def test_the_unsafe_set_covers_every_plane() -> None:
    import sys

    from utils.sanitize import _UNSAFE_LOG_CHARS

    everywhere = {chr(code) for code in range(sys.maxunicode + 1)
                  if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"}}
    assert set(_UNSAFE_LOG_CHARS) == everywhere
