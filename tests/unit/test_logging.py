"""The log pipeline: one JSON line per record, request ID attached, everything masked."""

from __future__ import annotations

import io
import json
import logging

import structlog

from utils.logging import bind_request_id, configure_logging, get_logger, reset_request_id


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_and_stdlib_records_are_masked_and_single_line() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", secrets=["configured-secret-xyz"], stream=stream)
    tokens = bind_request_id("req-123")
    try:
        get_logger("test").info("user said\nFORGED LINE", value="configured-secret-xyz")
        logging.getLogger("discord.client").warning("token %s", "whsec_AAAAAAAAAAAAAAAAAAAAAAAA")
    finally:
        reset_request_id(tokens)
    get_logger("test").info("after")

    first, second, third = records(stream)
    assert first["event"] == "user said\\nFORGED LINE"
    assert first["value"] == "***"
    assert first["request_id"] == "req-123"
    assert second["event"] == "token ***"
    assert second["logger"] == "discord.client"
    assert second["request_id"] == "req-123"
    assert "request_id" not in third
    structlog.reset_defaults()


def test_exceptions_are_logged_with_secrets_masked() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", secrets=["secret-inside-exception"], stream=stream)
    try:
        raise RuntimeError("failed with secret-inside-exception")
    except RuntimeError:
        get_logger("test").exception("boom")
    (record,) = records(stream)
    assert "secret-inside-exception" not in json.dumps(record)
    assert "RuntimeError" in str(record["exception"])
    structlog.reset_defaults()


def test_fields_named_like_credentials_are_masked_whatever_their_value() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    get_logger("test").info("login", password="hunter2", api_key="k1", Authorization="Basic x",
                            client_secret="s", refresh_token="t", cookie="c",
                            secret_name="discord-token", token_type="bearer", key_prefix="bk1",
                            user="ada")
    (record,) = records(stream)
    for field in ("password", "api_key", "Authorization", "client_secret", "refresh_token",
                  "cookie"):
        assert record[field] == "***", field
    # What only names or describes a credential stays readable.
    assert (record["secret_name"], record["token_type"], record["key_prefix"],
            record["user"]) == ("discord-token", "bearer", "bk1", "ada")
    structlog.reset_defaults()


def test_stdlib_extra_fields_are_masked_by_name_too() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    logging.getLogger("library").warning("connect", extra={"password": "pw-123"})
    (record,) = records(stream)
    assert "pw-123" not in json.dumps(record)
    structlog.reset_defaults()


def test_the_direct_access_line_is_the_pipeline_s_json() -> None:
    """The access line skips structlog in JSON mode: still one JSON object per line, with the
    same keys, and a method token outside the usual ones masked like any value."""
    from utils.logging import log_access

    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    try:
        log_access("GET", "GET /api/v1/guilds/{guild_id}/config", 404, 0.25, "req-1",
                   "127.0.0.1")
        log_access("BREW\x1b[2J", "(unmatched)", 405, 1.0, "req-2", "::1")
        get_logger("test").info("after")
    finally:
        structlog.reset_defaults()
    first, second, third = records(stream)
    assert {key: first[key] for key in ("method", "route", "status", "ms", "request_id",
                                        "client_ip", "event", "logger", "level")} == {
        "method": "GET", "route": "GET /api/v1/guilds/{guild_id}/config", "status": 404,
        "ms": 0.25, "request_id": "req-1", "client_ip": "127.0.0.1", "event": "request",
        "logger": "access", "level": "info"}
    assert str(first["timestamp"]).endswith("Z")
    assert len(str(first["timestamp"])) == 27
    assert "\x1b" not in str(second["method"])
    assert set(first) - {"request_id"} <= set(third) | {"method", "route", "status", "ms",
                                                        "client_ip"}


def test_access_lines_follow_the_level() -> None:
    from utils.logging import log_access

    stream = io.StringIO()
    configure_logging(log_format="json", level="WARNING", stream=stream)
    try:
        log_access("GET", "GET /x", 200, 1.0, "req", "127.0.0.1")
    finally:
        structlog.reset_defaults()
    assert stream.getvalue() == ""
