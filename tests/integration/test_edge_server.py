"""What the server answers before the application (issue 14, findings 4 and 6): aiohttp's own
refusals in the JSON shape with the request id and security headers and no version banner;
slow clients cut off; a cap on connections per address."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import api
from edge.server import EdgeLimits, EdgeServer
from store.database import Database
from tests.support.edge_server import EdgeTestServer
from tests.support.raw_http import RawResponse, exchange, parse_response, read_response
from utils.config import Settings

Client = TestClient[web.Request, web.Application]
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "strict-origin-when-cross-origin"}


@pytest.fixture
def sqlite_database(tmp_path: Path, sqlite_template: Path) -> Database:
    path = tmp_path / "bot.db"
    shutil.copyfile(sqlite_template, path)
    return Database(f"sqlite+aiosqlite:///{path}")


async def serve(aiohttp_client: Callable[..., Any], settings: Settings, database: Database,
                **limits: Any) -> Client:
    app = api.create_app(settings, database=database)
    edge = EdgeLimits.from_settings(settings)
    if limits:
        edge = EdgeLimits(**{**edge.__dict__, **limits})
    return await aiohttp_client(EdgeTestServer(app, edge))  # type: ignore[no-any-return]


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 sqlite_database: Database) -> AsyncIterator[Client]:
    settings = make_settings(rate_limit_health="100000/minute")
    yield await serve(aiohttp_client, settings, sqlite_database)
    await sqlite_database.dispose()


def edge_server(client: Client) -> EdgeServer:
    server = client.server.runner.server  # type: ignore[union-attr]
    assert isinstance(server, EdgeServer)
    return server


def assert_shaped(response: RawResponse, status: int) -> None:
    """The contract on a refusal aiohttp made before any middleware ran."""
    assert response.status == status, response
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "request_id"}
    assert response.headers["x-request-id"] == body["request_id"]
    for name, value in SECURITY.items():
        assert response.headers[name] == value
    assert response.headers["server"] == "community-bot"
    assert "aiohttp" not in str(response.headers)
    assert "Python" not in str(response.headers)


# --- 6. aiohttp's own refusals carry the contract ---------------------------------------------

PARSER_REFUSALS = [
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * (17 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n", 400),
    (b"POST /webhooks/reflections HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\n", 400),
]


@pytest.mark.parametrize(("raw", "status"), PARSER_REFUSALS)
async def test_parser_refusals_carry_the_json_shape_and_headers(
        client: Client, raw: bytes, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert_shaped(await exchange(client.server.port or 0, raw), status)
    assert "Traceback" not in capsys.readouterr().err


async def test_the_server_keeps_serving_after_refusals(client: Client) -> None:
    for raw, _ in PARSER_REFUSALS:
        await exchange(client.server.port or 0, raw)
    response = await client.get("/health")
    assert response.status == 200
    assert edge_server(client).counts.parser_errors == len(PARSER_REFUSALS)


async def test_application_responses_announce_no_version(client: Client) -> None:
    for response in (await client.get("/health"), await client.get("/no/such/route")):
        assert response.headers["Server"] == "community-bot"


# --- 4. slow clients --------------------------------------------------------------------------

async def test_headers_that_never_finish_are_answered_408_and_closed(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        sqlite_database: Database) -> None:
    client = await serve(aiohttp_client, make_settings(), sqlite_database, header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    started = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    response = parse_response(await read_response(reader, limit_seconds=5))
    assert 0.25 < time.monotonic() - started < 2
    assert_shaped(response, 408)
    assert await reader.read() == b""  # closed
    writer.close()
    # A connection that sends nothing at all is closed the same way.
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    assert_shaped(parse_response(await read_response(reader, limit_seconds=5)), 408)
    writer.close()
    assert edge_server(client).counts.header_timeouts == 2
    await sqlite_database.dispose()


async def test_a_body_short_of_its_length_is_408_and_the_connection_closes(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        sqlite_database: Database) -> None:
    settings = make_settings(api_key="k" * 32, app_reflections_webhook_secret="whsec_" + "A" * 32)
    client = await serve(aiohttp_client, settings, sqlite_database, body_timeout=0.3)
    for path, method in (("/webhooks/reflections", "POST"),
                         ("/api/v1/guilds/1/config", "PUT")):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        started = time.monotonic()
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"X-Api-Key: {'k' * 32}\r\nContent-Length: 100\r\n\r\n{{\"a\"".encode())
        response = parse_response(await read_response(reader, limit_seconds=5))
        assert response.status == 408, response
        assert response.json()["detail"] == "the body did not arrive in time"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
        assert time.monotonic() - started < 3
        writer.close()
    await sqlite_database.dispose()


async def test_idle_keepalive_connections_are_closed(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        sqlite_database: Database) -> None:
    client = await serve(aiohttp_client, make_settings(), sqlite_database, keepalive_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parse_response(await read_response(reader)).status == 200
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert time.monotonic() - started < 3
    writer.close()
    await sqlite_database.dispose()


async def test_connections_per_address_are_capped(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        sqlite_database: Database) -> None:
    client = await serve(aiohttp_client, make_settings(rate_limit_health="1000/minute"),
                         sqlite_database, max_connections_per_ip=5)
    held = [await asyncio.open_connection("127.0.0.1", client.server.port) for _ in range(5)]
    await asyncio.sleep(0.05)
    refused = await exchange(client.server.port or 0, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_shaped(refused, 503)
    assert refused.headers["retry-after"] == "5"
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)
    assert edge_server(client).open_connections("127.0.0.1") == 0
    assert (await exchange(client.server.port or 0,
                           b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            ).status == 200
    await sqlite_database.dispose()
