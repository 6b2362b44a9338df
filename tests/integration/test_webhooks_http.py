"""Webhooks over HTTP: every bad input is a 4xx that changes nothing; replays do nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import api
from store.database import Database
from store.models import AuditLog, Reflection, WebhookDelivery
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    encode,
    github_headers,
    row_counts,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

Client = TestClient[web.Request, web.Application]
PATH = "/webhooks/reflections"
SECRET = SECRETS["APP_REFLECTIONS_WEBHOOK_SECRET"]
VALID = {"action": "upsert", "reflection_id": "r-1", "user_id": "user-1", "text": "hello"}
VALID_BODY = encode(VALID)


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database) -> Client:
    settings = make_settings(**settings_overrides())
    return await aiohttp_client(api.create_app(settings, database=database))  # type: ignore[no-any-return]


def signed(body: bytes = VALID_BODY,
           **header_overrides: str | None) -> tuple[bytes, dict[str, str]]:
    headers = standard_headers(SECRET, body)
    for name, value in header_overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return body, headers


def now() -> int:
    return int(time.time())


BAD_INPUTS: dict[str, tuple[Callable[[], tuple[bytes, dict[str, str]]], int]] = {
    "no signature headers": (lambda: (VALID_BODY, {"Content-Type": "application/json"}), 400),
    "missing webhook-signature": (lambda: signed(webhook_signature=None), 401),
    "missing webhook-id": (lambda: signed(webhook_id=None), 400),
    "missing webhook-timestamp": (lambda: signed(webhook_timestamp=None), 400),
    "empty signature": (lambda: signed(webhook_signature=""), 401),
    "signature 'v1'": (lambda: signed(webhook_signature="v1"), 401),
    "signature 'v1,sig,'": (lambda: signed(webhook_signature="v1,sig,"), 401),
    "signature not base64": (lambda: signed(webhook_signature="v1,!!!!"), 401),
    "signature 10 kB": (lambda: signed(webhook_signature="v1," + "A" * 10_000), 400),
    "signature not ASCII": (lambda: signed(webhook_signature="v1,ÿé"), 400),
    "timestamp not numeric": (lambda: signed(webhook_timestamp="abc"), 400),
    "timestamp NaN": (lambda: signed(webhook_timestamp="NaN"), 400),
    "timestamp huge": (lambda: signed(webhook_timestamp="9" * 40), 400),
    "timestamp negative": (lambda: signed(webhook_timestamp="-5"), 400),
    "timestamp float": (lambda: signed(webhook_timestamp=f"{now()}.5"), 400),
    "timestamp too old": (lambda: (VALID_BODY, standard_headers(
        SECRET, VALID_BODY, timestamp=now() - 310)), 401),
    "timestamp in the future": (lambda: (VALID_BODY, standard_headers(
        SECRET, VALID_BODY, timestamp=now() + 310)), 401),
    "wrong secret": (lambda: (VALID_BODY, standard_headers(
        "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==", VALID_BODY)), 401),
    "another webhook's secret": (lambda: (VALID_BODY, standard_headers(
        SECRETS["FOUNDER_WEBHOOK_SECRET"], VALID_BODY)), 401),
    "signed a different body": (lambda: (encode({**VALID, "text": "evil"}),
                                         standard_headers(SECRET, VALID_BODY)), 401),
    "webhook-id changed after signing": (lambda: signed(webhook_id="msg_other"), 401),
    "webhook-id with bad characters": (lambda: signed(webhook_id="msg/../x y"), 400),
    "webhook-id 200 chars": (lambda: signed(webhook_id="m" * 200), 400),
    "body-only signature while disabled": (lambda: (VALID_BODY, github_headers(
        SECRET, VALID_BODY)), 400),
    "body not UTF-8": (lambda: signed(b'{"text": "\xff\xfe"}'), 400),
    "body not JSON": (lambda: signed(b"{not json"), 400),
    "empty body": (lambda: signed(b""), 400),
    "JSON array": (lambda: signed(b"[1, 2]"), 422),
    "schema: unknown action": (lambda: signed(encode({**VALID, "action": "delete"})), 422),
    "schema: missing user_id": (lambda: signed(encode({"action": "upsert",
                                                       "reflection_id": "r"})), 422),
    "schema: user_id injection": (lambda: signed(encode({**VALID, "user_id": "x'; drop"})), 422),
    "schema: text too long": (lambda: signed(encode({**VALID, "text": "x" * 4001})), 422),
    "schema: upsert without text": (lambda: signed(encode({**VALID, "text": ""})), 422),
    "text/plain": (lambda: (VALID_BODY, {**standard_headers(SECRET, VALID_BODY),
                                         "Content-Type": "text/plain"}), 415),
    "no content type": (lambda: (VALID_BODY, {k: v for k, v in standard_headers(
        SECRET, VALID_BODY).items() if k != "Content-Type"}), 415),
    "body over 1 MiB": (lambda: signed(b'{"t": "' + b"x" * (1024 * 1024) + b'"}'), 413),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
async def test_bad_input_is_refused_and_changes_nothing(client: Client, database: Database,
                                                        case: str) -> None:
    build, expected = BAD_INPUTS[case]
    body, headers = build()
    before = await row_counts(database, skip=frozenset({"audit_log", "app_state"}))
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == expected, await response.text()
    error = await response.json()
    assert set(error) >= {"detail", "request_id"}
    assert await row_counts(database, skip=frozenset({"audit_log", "app_state"})) == before
    async with database.session() as session:
        events = (await session.scalars(select(AuditLog.event))).all()
    assert events == ["webhook.rejected"]


async def test_validation_errors_name_fields_without_echoing_input(client: Client) -> None:
    body, headers = signed(encode({**VALID, "user_id": "<script>secret-input</script>"}))
    response = await client.post(PATH, data=body, headers=headers)
    error = await response.json()
    assert response.status == 422
    assert [item["loc"] for item in error["errors"]] == ["user_id"]
    assert "secret-input" not in json.dumps(error)


async def test_unconfigured_webhook_answers_503_and_does_nothing(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    """Enabled on purpose (WEBHOOKS_ENABLED) but its secret is missing: never skipped."""
    overrides = settings_overrides(webhooks_enabled="reflections")
    del overrides["app_reflections_webhook_secret"]
    client = await aiohttp_client(api.create_app(make_settings(**overrides), database=database))
    body, headers = signed()
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 503
    assert (await response.json())["detail"] == "webhook not configured"
    async with database.session() as session:
        assert (await session.scalars(select(Reflection))).all() == []


@pytest.mark.parametrize("enabled", [None, "founder,legal-update"])
async def test_a_disabled_sender_answers_404_and_does_nothing(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, enabled: str | None) -> None:
    """Off by WEBHOOKS_ENABLED, or (by default) because its secret is not set."""
    overrides = settings_overrides(webhooks_enabled=enabled)
    if enabled is None:
        del overrides["app_reflections_webhook_secret"]
    client = await aiohttp_client(api.create_app(make_settings(**overrides), database=database))
    body, headers = signed()
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 404
    assert set(await response.json()) == {"detail", "request_id"}
    async with database.session() as session:
        assert (await session.scalars(select(Reflection))).all() == []


async def test_valid_delivery_applies_once_and_replay_is_duplicate(client: Client,
                                                                   database: Database) -> None:
    body, headers = signed()
    first = await client.post(PATH, data=body, headers=headers)
    assert first.status == 200
    assert await first.json() == {"status": "processed", "action": "upserted"}
    replay = await client.post(PATH, data=body, headers=headers)
    assert replay.status == 200
    assert await replay.json() == {"status": "duplicate"}
    # Same id, re-signed with a new timestamp (how senders retry): still a duplicate.
    resent = standard_headers(SECRET, body, msg_id=headers["webhook-id"], timestamp=now() + 5)
    assert await (await client.post(PATH, data=body, headers=resent)).json() == \
        {"status": "duplicate"}
    async with database.session() as session:
        assert len((await session.scalars(select(WebhookDelivery))).all()) == 1
        events = (await session.scalars(select(AuditLog.event).order_by(AuditLog.id))).all()
    assert events == ["webhook.accepted", "webhook.duplicate", "webhook.duplicate"]


async def test_replay_after_the_window_is_refused_by_its_timestamp(client: Client) -> None:
    old = now() - 2 * 300 - 1
    headers = standard_headers(SECRET, VALID_BODY, msg_id="msg_old", timestamp=old)
    response = await client.post(PATH, data=VALID_BODY, headers=headers)
    assert response.status == 401


@pytest.mark.parametrize("header", ["X-Hub-Signature-256", "X-Webhook-Signature"])
async def test_body_only_signatures_when_enabled(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, header: str) -> None:
    settings = make_settings(**settings_overrides(webhook_allow_body_only_signatures=True))
    client = await aiohttp_client(api.create_app(settings, database=database))
    headers = github_headers(SECRET, VALID_BODY, header)
    first = await client.post(PATH, data=VALID_BODY, headers=headers)
    assert (await first.json())["status"] == "processed"
    replay = await client.post(PATH, data=VALID_BODY, headers=headers)
    assert await replay.json() == {"status": "duplicate"}
    bad = await client.post(PATH, data=VALID_BODY,
                            headers=github_headers("not the secret", VALID_BODY, header))
    assert bad.status == 401


@pytest.mark.parametrize("name", sorted(PATHS))
async def test_each_webhook_requires_its_own_secret(client: Client, name: str) -> None:
    path, variable = PATHS[name]
    others = [secret for var, secret in SECRETS.items() if var != variable]
    for secret in others:
        response = await client.post(path, data=b"{}", headers=standard_headers(secret, b"{}"))
        assert response.status == 401, (name, secret)


async def test_a_refusal_is_logged_with_its_reason_and_no_secret(client: Client) -> None:
    import io
    import json

    import structlog

    from utils.logging import configure_logging

    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream, secrets=list(SECRETS.values()))
    try:
        body, headers = signed()
        headers["webhook-signature"] = "v1,AAAA" + headers["webhook-signature"][7:]
        assert (await client.post(PATH, data=body, headers=headers)).status == 401
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    refused = [line for line in lines if line["event"] == "webhook refused"]
    assert [(line["webhook"], line["status"], line["reason"]) for line in refused] == [
        ("reflections", 401, "signature does not match")]
    assert SECRET not in stream.getvalue()
