"""Hostile inputs answer 4xx in the JSON shape on both backends, never 5xx (issue 14, 1-3)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.exc import StatementError

import api
from edge.server import EdgeLimits
from store import accounts, audit
from store.database import Database, is_unstorable
from store.models import DiscordLink
from tests.support.edge_server import EdgeTestServer
from tests.support.raw_http import exchange, request_bytes
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    auth_event,
    encode,
    row_counts,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings
from utils.storable import UnstorableText

Client = TestClient[web.Request, web.Application]
API_KEY = "static-service-key-0123456789abcdef"
KEY = {"X-Api-Key": API_KEY}
GUILD = "123456789012345678"


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database) -> Client:
    settings = make_settings(**settings_overrides(
        api_key=API_KEY, rate_limit_read="10000/minute", rate_limit_write="10000/minute",
        rate_limit_webhook="10000/minute"))
    app = api.create_app(settings, database=database)  # served as bot.py serves it
    return await aiohttp_client(EdgeTestServer(app, EdgeLimits.from_settings(settings)))  # type: ignore[no-any-return]


async def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert set(body) >= {"detail", "request_id"}
    assert response.headers["X-Request-ID"] == body["request_id"]
    return body


# --- 1. ids and numbers are ASCII digits only ---------------------------------------------------

@pytest.mark.parametrize("segment", [
    "%C2%B2",  # ² (was a 500: isdigit() accepted it, int() refused it)
    "%D9%A1",  # Arabic-Indic one (was taken as guild 1)
    "%EF%BC%95",  # full-width five
    "+1", "%201", "1_0", "0", "9223372036854775808",
])
async def test_path_ids_are_ascii_digits_only(client: Client, segment: str) -> None:
    for method in ("GET", "PUT"):
        response = await client.request(method, f"/api/v1/guilds/{segment}/config",
                                        headers=KEY, json={})
        body = await assert_error(response, 422)
        assert body["detail"] == "guild_id must be a Discord id"
    await assert_error(await client.get(f"/api/v1/guilds/{segment}/audit", headers=KEY), 422)


@pytest.mark.parametrize("query", [
    "limit=%EF%BC%95",  # full-width five (was accepted as 5)
    "limit=%C2%B2", "offset=%D9%A1", "limit=+5", "limit=%205", "limit=5.0", "limit=1_0",
    "offset=99999999",
])
async def test_pagination_numbers_are_ascii_digits_only(client: Client, query: str) -> None:
    await assert_error(await client.get(f"/api/v1/guilds/{GUILD}/audit?{query}",
                                        headers=KEY), 422)
    await assert_error(await client.get(f"/api/v1/commands/stats?{query}", headers=KEY), 422)


@pytest.mark.parametrize("channel", ['"555"', "555.0", "true", '"%C2%B2"', "9223372036854775808"])
async def test_body_discord_ids_are_json_integers_in_range(client: Client, channel: str) -> None:
    response = await client.put(f"/api/v1/guilds/{GUILD}/config",
                                headers={**KEY, "Content-Type": "application/json"},
                                data=f'{{"announcement_channel_id": {channel}}}')
    await assert_error(response, 422)


@pytest.mark.parametrize("provider_id", [
    "99999999999999999999",  # 20 digits above 2**63-1: was an out-of-range insert (500)
    "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨",  # Arabic-Indic digits
    "１２３４５６７８９０１２３４５６７８",  # full-width digits
])
async def test_auth_webhook_links_only_real_snowflakes(client: Client, database: Database,
                                                       provider_id: str) -> None:
    body = encode(auth_event(user_id="user-x", discord_id=provider_id))
    response = await client.post(PATHS["supabase-auth"][0], data=body, headers=standard_headers(
        SECRETS["SUPABASE_WEBHOOK_SECRET"], body))
    assert response.status == 200
    assert (await response.json())["linked"] is False
    async with database.session() as session:
        assert (await session.scalars(select(DiscordLink))).all() == []


# --- 3. text PostgreSQL cannot store (NUL): the same 422 on both backends -----------------------

def _with_nul(where: str) -> tuple[str, dict[str, Any]]:
    """A valid payload of some webhook with a NUL at `where`."""
    if where == "reflection text":
        return "reflections", {"action": "upsert", "reflection_id": "r1", "user_id": "u1",
                               "text": "before\u0000after"}
    event = auth_event(user_id="user-nul")
    if where == "auth e-mail":
        event["record"]["email"] = "a\u0000@example.com"
    elif where == "auth name":
        event["record"]["raw_user_meta_data"]["full_name"] = "Ada\u0000"
    else:  # a key deep in metadata that is never stored: refused all the same, on both
        event["record"]["raw_user_meta_data"]["deep"] = [{"k\u0000": 1}]
    return "supabase-auth", event


@pytest.mark.parametrize("where", ["reflection text", "auth e-mail", "auth name", "deep key"])
async def test_signed_payload_with_nul_is_422_and_stores_nothing(
        client: Client, database: Database, where: str) -> None:
    name, payload = _with_nul(where)
    path, secret_name = PATHS[name]
    body = encode(payload)
    assert b"\\u0000" in body
    response = await client.post(path, data=body, headers=standard_headers(SECRETS[secret_name],
                                                                           body))
    error = await assert_error(response, 422)
    assert "NUL" in str(error)
    before = await row_counts(database, skip=frozenset({"audit_log"}))
    assert before["webhook_deliveries"] == 0
    assert before["reflections"] == before["users"] == 0


@pytest.mark.parametrize("settings", [{"tz": "U\u0000TC"}, {"t\u0000z": "UTC"}])
async def test_api_body_with_nul_is_422(client: Client, settings: dict[str, str]) -> None:
    response = await client.put(f"/api/v1/guilds/{GUILD}/config", headers=KEY,
                                json={"settings": settings})
    await assert_error(response, 422)
    current = await (await client.get(f"/api/v1/guilds/{GUILD}/config", headers=KEY)).json()
    assert current["settings"] == {}


async def test_the_store_refuses_nul_on_both_backends(database: Database) -> None:
    """Whatever path text takes to the database (a command, a future route), NUL is refused
    the same way on SQLite as on PostgreSQL, in text columns and in JSON columns."""

    async def reflection(text: str) -> None:
        async with database.transaction() as session:
            await accounts.ensure_user(session, "user-1")
            await accounts.share_reflection(session, "r1", "user-1", text)

    async def audit_note(note: str) -> None:
        async with database.transaction() as session:
            await audit.record(session, "test.event", details={"note": note})

    with pytest.raises(UnstorableText):
        await reflection("a\x00b")
    with pytest.raises(StatementError) as wrapped:  # JSON columns: wrapped by SQLAlchemy
        await audit_note("a\x00b")
    assert is_unstorable(wrapped.value)
    await reflection("a\\u0000b is text, not a NUL")  # ordinary text still goes through
    await audit_note("\\u0000 as text")


# --- 2. Content-Encoding: refused before reading, signatures over the bytes as sent -------------

REFLECTION = {"action": "upsert", "reflection_id": "gz1", "user_id": "u1", "text": "zipped"}
REFLECTIONS_PATH, REFLECTIONS_SECRET = PATHS["reflections"][0], SECRETS[
    "APP_REFLECTIONS_WEBHOOK_SECRET"]


async def post_raw(client: Client, path: str, body: bytes, headers: dict[str, str]) -> Any:
    """POST exactly these bytes and headers (the test client would compress nothing itself)."""
    return await client.post(path, data=body, headers=headers,
                             skip_auto_headers=["Content-Encoding"])


async def test_gzip_header_on_a_body_that_is_not_gzip_is_4xx_without_a_secret(
        client: Client) -> None:
    body = encode(REFLECTION)
    unsigned = await post_raw(client, REFLECTIONS_PATH, body, {
        "Content-Type": "application/json", "Content-Encoding": "gzip"})
    await assert_error(unsigned, 400)  # the signature headers are missing: checked first
    signed = standard_headers(REFLECTIONS_SECRET, body)
    response = await post_raw(client, REFLECTIONS_PATH, body,
                              {**signed, "Content-Encoding": "gzip"})
    assert (await assert_error(response, 400))["detail"] == "body is not valid gzip"


async def test_gzipped_delivery_is_verified_over_the_bytes_as_sent(client: Client,
                                                                   database: Database) -> None:
    compressed = gzip.compress(encode(REFLECTION))
    headers = {**standard_headers(REFLECTIONS_SECRET, compressed), "Content-Encoding": "gzip"}
    response = await post_raw(client, REFLECTIONS_PATH, compressed, headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "processed"
    # Signed over the inflated JSON instead: not what was sent, so not a valid signature.
    other = {**REFLECTION, "reflection_id": "gz2"}
    compressed = gzip.compress(encode(other))
    headers = {**standard_headers(REFLECTIONS_SECRET, encode(other)), "Content-Encoding": "gzip"}
    await assert_error(await post_raw(client, REFLECTIONS_PATH, compressed, headers), 401)
    counts = await row_counts(database)
    assert counts["reflections"] == 1


async def test_a_gzip_bomb_stays_small(client: Client) -> None:
    bomb = gzip.compress(b'{"text": "' + b" " * (8 * 1024 * 1024) + b'"}')
    assert len(bomb) < 20_000
    headers = {**standard_headers(REFLECTIONS_SECRET, bomb), "Content-Encoding": "gzip"}
    await assert_error(await post_raw(client, REFLECTIONS_PATH, bomb, headers), 413)


@pytest.mark.parametrize("coding", ["br", "deflate", "zstd", "compress", "gzip, gzip",
                                    "identity, gzip", "gzip;q=1"])
async def test_unsupported_content_encoding_is_415_before_the_body_is_read(
        client: Client, coding: str) -> None:
    # Headers announce 1000 bytes that never come: the answer must not wait for them.
    for path in (REFLECTIONS_PATH, f"/api/v1/guilds/{GUILD}/config"):
        method = "POST" if path.startswith("/webhooks/") else "PUT"
        request = request_bytes(method, path, {
            **KEY, "Content-Type": "application/json", "Content-Encoding": coding,
            "Content-Length": "1000"})
        response = await exchange(client.server.port or 0, request, limit_seconds=5)
        assert response.status == 415, response
        assert response.json()["detail"] == "Content-Encoding must be gzip or identity"


async def test_api_bodies_may_be_gzipped(client: Client) -> None:
    body = gzip.compress(encode({"settings": {"tz": "UTC"}}))
    response = await client.put(f"/api/v1/guilds/{GUILD}/config", data=body, headers={
        **KEY, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status == 200, await response.text()
    assert (await response.json())["settings"] == {"tz": "UTC"}


@pytest.mark.parametrize("framing", [
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is no number
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n",  # a chunk shorter than its size
])
async def test_a_body_with_broken_framing_is_400_in_the_json_shape(client: Client,
                                                                   framing: bytes) -> None:
    for path in (REFLECTIONS_PATH, f"/api/v1/guilds/{GUILD}/config"):
        method = "POST" if path.startswith("/webhooks/") else "PUT"
        head = request_bytes(method, path, {
            **standard_headers(REFLECTIONS_SECRET, b"{}"), **KEY})[:-2]
        response = await exchange(client.server.port or 0, head + framing, limit_seconds=5)
        assert response.status == 400, response
        assert set(response.json()) >= {"detail", "request_id"}


# --- concurrent first writes: a lost race is retried, never a 500 --------------------------------

async def test_concurrent_first_deliveries_for_one_new_user_all_apply(
        client: Client, database: Database) -> None:
    """Ten reflections of a user the database does not know yet, at once: each delivery makes
    the bare user row; the losers of that race try again instead of answering 500."""
    bodies = [encode({"action": "upsert", "reflection_id": f"race-{number}",
                      "user_id": "new-user", "text": "t"}) for number in range(10)]
    responses = await asyncio.gather(*[
        client.post(REFLECTIONS_PATH, data=body,
                    headers=standard_headers(REFLECTIONS_SECRET, body)) for body in bodies])
    assert [response.status for response in responses] == [200] * 10
    counts = await row_counts(database)
    assert (counts["users"], counts["reflections"]) == (1, 10)


async def test_concurrent_first_config_writes_are_never_a_500(client: Client) -> None:
    responses = await asyncio.gather(*[
        client.put("/api/v1/guilds/777777777777777777/config", headers=KEY,
                   json={"settings": {"n": number}}) for number in range(10)])
    assert {response.status for response in responses} <= {200, 409}
