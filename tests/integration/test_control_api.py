"""The /api/v1 control API: guild config with audit, pagination, body rules, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import api
from control.openapi import build_document
from store import api_keys
from store.database import Database
from store.models import AuditLog
from tests.conftest import link_discord
from tests.support.jwks_server import FakeSupabase
from tests.support.webhook_support import SECRETS, auth_event, encode, standard_headers
from utils.config import Settings

Client = TestClient[web.Request, web.Application]
API_KEY = "static-service-key-0123456789abcdef"
GUILD = "123456789012345678"
JSON = {"X-Api-Key": API_KEY}


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database) -> Client:
    settings = make_settings(api_key=API_KEY, owner_ids="424242424242424242",
                             supabase_webhook_secret=SECRETS["SUPABASE_WEBHOOK_SECRET"],
                             rate_limit_read="1000/minute", rate_limit_write="1000/minute")
    return await aiohttp_client(api.create_app(settings, database=database))  # type: ignore[no-any-return]


async def test_guild_config_round_trip_is_audited_with_before_and_after(
        client: Client, database: Database) -> None:
    empty = await client.get(f"/api/v1/guilds/{GUILD}/config", headers=JSON)
    assert await empty.json() == {"guild_id": GUILD, "announcement_channel_id": None,
                                  "settings": {}}
    changed = await client.put(f"/api/v1/guilds/{GUILD}/config", headers=JSON,
                               json={"announcement_channel_id": 555, "settings": {"tz": "UTC"}})
    assert changed.status == 200
    assert await changed.json() == {"guild_id": GUILD, "announcement_channel_id": "555",
                                    "settings": {"tz": "UTC"}}
    async with database.session() as session:
        (event,) = (await session.scalars(select(AuditLog).where(
            AuditLog.event == "guild.config.changed"))).all()
    assert event.guild_id == int(GUILD)
    assert event.details["before"] == {"announcement_channel_id": None, "settings": {}}
    assert event.details["after"]["announcement_channel_id"] == "555"

    audit = await client.get(f"/api/v1/guilds/{GUILD}/audit?limit=1&offset=0", headers=JSON)
    body = await audit.json()
    assert (body["total"], body["limit"], body["offset"]) == (1, 1, 0)
    assert body["items"][0]["event"] == "guild.config.changed"


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"data": b"announcement_channel_id=1", "headers": {"Content-Type": "text/plain"}}, 415),
    ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
    ({"json": {"announcement_channel_id": "abc"}}, 422),
    ({"json": {"announcement_channel_id": -5}}, 422),
    ({"json": {"unknown_field": 1}}, 422),
    ({"json": {"settings": {str(i): i for i in range(51)}}}, 422),
    ({"data": b'{"settings": {"x": "' + b"y" * (1024 * 1024) + b'"}}',
      "headers": {"Content-Type": "application/json"}}, 413),
])
async def test_bad_bodies_are_4xx_and_change_nothing(client: Client, database: Database,
                                                     kwargs: dict[str, Any],
                                                     status: int) -> None:
    kwargs = dict(kwargs)  # parameters are shared between the two database runs
    headers = {**JSON, **kwargs.pop("headers", {})}
    response = await client.put(f"/api/v1/guilds/{GUILD}/config", headers=headers, **kwargs)
    assert response.status == status
    assert set(await response.json()) >= {"detail", "request_id"}
    current = await (await client.get(f"/api/v1/guilds/{GUILD}/config", headers=JSON)).json()
    assert current["announcement_channel_id"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "limit=x"])
async def test_bad_pagination_is_422(client: Client, query: str) -> None:
    response = await client.get(f"/api/v1/guilds/{GUILD}/audit?{query}", headers=JSON)
    assert response.status == 422


async def test_bad_guild_id_is_422(client: Client) -> None:
    assert (await client.get("/api/v1/guilds/abc/config", headers=JSON)).status == 422
    assert (await client.get("/api/v1/guilds/99999999999999999999/config",
                             headers=JSON)).status == 422


async def test_users_act_on_guilds_only_through_a_verified_link(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, supabase: FakeSupabase) -> None:
    settings = make_settings(supabase_url=supabase.url, owner_ids="424242424242424242")
    client = await aiohttp_client(api.create_app(settings, database=database))
    bearer = {"Authorization": f"Bearer {supabase.token(sub='user-1')}"}
    unlinked = await client.get(f"/api/v1/guilds/{GUILD}/config", headers=bearer)
    assert unlinked.status == 403
    assert (await unlinked.json())["detail"] == "link your Discord account first"
    await link_discord(database, "user-1", 111111111111111111)
    not_admin = await client.get(f"/api/v1/guilds/{GUILD}/config", headers=bearer)
    assert (await not_admin.json())["detail"] == "guild admins only"
    me = await (await client.get("/api/v1/me", headers=bearer)).json()
    assert me["discord_user_id"] == "111111111111111111"
    await link_discord(database, "owner-1", 424242424242424242)
    owner = {"Authorization": f"Bearer {supabase.token(sub='owner-1')}"}
    assert (await client.get(f"/api/v1/guilds/{GUILD}/config", headers=owner)).status == 200


async def test_banned_user_from_the_auth_webhook_loses_api_access(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, supabase: FakeSupabase) -> None:
    settings = make_settings(supabase_url=supabase.url,
                             supabase_webhook_secret=SECRETS["SUPABASE_WEBHOOK_SECRET"])
    client = await aiohttp_client(api.create_app(settings, database=database))
    bearer = {"Authorization": f"Bearer {supabase.token()}"}
    assert (await client.get("/api/v1/me", headers=bearer)).status == 200
    event = auth_event("UPDATE")
    event["record"]["banned_until"] = "2999-01-01T00:00:00Z"
    body = encode(event)
    response = await client.post("/webhooks/supabase/auth", data=body, headers=standard_headers(
        SECRETS["SUPABASE_WEBHOOK_SECRET"], body))
    assert response.status == 200
    assert (await client.get("/api/v1/me", headers=bearer)).status == 401


async def test_command_stats_paginate(client: Client) -> None:
    stats = client.app[api.STATS]
    for name in ("ping", "help", "learn"):
        stats.record(name, failed=False)  # type: ignore[attr-defined]
    stats.record("learn", failed=True)  # type: ignore[attr-defined]
    body = await (await client.get("/api/v1/commands/stats?limit=2&offset=1",
                                   headers=JSON)).json()
    assert body == {"items": [{"command": "learn", "runs": 2, "failures": 1},
                              {"command": "ping", "runs": 1, "failures": 0}],
                    "total": 3, "limit": 2, "offset": 1}


async def test_drive_sync_not_configured_and_search_needs_credentials(
        client: Client, database: Database) -> None:
    key = await api_keys.create_key(database, name="d", scopes=("drive:sync",),
                                    expires_in=None)
    response = await client.post("/api/v1/drive/sync", headers={"X-Api-Key": key.plaintext})
    assert (response.status, (await response.json())["detail"]) == (
        503, "drive sync is not configured (DRIVE_FOLDER_ID)")
    anonymous = await client.get("/api/v1/knowledge/search?q=risk")
    assert anonymous.status == 401  # a community's documents are not public
    wrong_scope = await client.get("/api/v1/knowledge/search?q=risk",
                                   headers={"X-Api-Key": key.plaintext})
    assert wrong_scope.status == 403


def test_openapi_documents_every_route_of_the_router(make_settings: Callable[..., Settings],
                                                    ) -> None:
    app = api.create_app(make_settings())
    document = build_document(app)
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.method != "HEAD" and route.resource is not None}
    documented = {(method, path) for path, operations in document["paths"].items()
                  for method in operations}
    assert documented == served
    assert document["openapi"] == "3.1.0"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            if path.startswith("/api/v1/"):
                assert operation["security"], (method, path)


async def test_openapi_is_served(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert "/api/v1/guilds/{guild_id}/config" in (await response.json())["paths"]



async def test_a_handler_past_its_time_limit_answers_503(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from control import policy

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    monkeypatch.setattr(policy, "HANDLER_TIMEOUT_SECONDS", 0.05)
    app = api.create_app(make_settings(api_key=API_KEY), database=database)
    app.router.add_get("/api/v1/test/slow", slow)
    client = await aiohttp_client(app)
    response = await client.get("/api/v1/test/slow", headers=JSON)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["detail"] == "the request took too long, retry later"


def large_integers(value: Any, path: str = "$") -> list[str]:
    """Where `value` holds an integer a JavaScript client would round (a Discord id as number)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [path] if abs(value) >= 2**32 else []
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in large_integers(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [hit for index, item in enumerate(value)
                for hit in large_integers(item, f"{path}[{index}]")]
    return []


async def test_every_discord_id_in_every_response_is_a_string(
        client: Client, database: Database) -> None:
    """Seed every kind of row the dashboard reads, then walk every GET route of /api/v1."""
    channel = 987654321098765432
    await link_discord(database, "user-ids", 876543210987654321)
    assert (await client.put(f"/api/v1/guilds/{GUILD}/config", headers=JSON,
                             json={"announcement_channel_id": channel})).status == 200
    async with database.transaction() as session:  # an audit row as an older version wrote it
        session.add(AuditLog(event="guild.announcement", guild_id=int(GUILD),
                             details={"channel": channel}))
    app = client.server.app
    assert app is not None
    paths = sorted({route.resource.canonical for route in app.router.routes()
                    if route.method == "GET" and route.resource is not None
                    and route.resource.canonical.startswith("/api/v1/")})
    checked = 0
    for template in paths:
        url = template.replace("{guild_id}", GUILD).replace("{sync_id}", "1")
        response = await client.get(url, params={"q": "anything"}, headers=JSON)
        if response.content_type != "application/json" or response.status >= 300:
            continue
        assert large_integers(await response.json()) == [], template
        checked += 1
    assert checked >= 4  # me, config, audit, stats (search and sync answer without ids)
