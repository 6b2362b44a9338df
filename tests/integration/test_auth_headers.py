"""Credentials whose bytes are not UTF-8 (aiohttp hands them over as lone surrogates) are a 401
like any wrong credential, on every route that reads one: never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import api
from store.database import Database
from tests.support.jwks_server import FakeSupabase
from tests.support.raw_http import exchange
from utils.config import Settings

API_KEY = "static-service-key-0123456789abcdef"


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database, supabase: FakeSupabase
                 ) -> TestClient[web.Request, web.Application]:
    settings = make_settings(supabase_url=supabase.url, api_key=API_KEY)
    return await aiohttp_client(api.create_app(settings, database=database))  # type: ignore[no-any-return]


BAD_KEYS = [b"X-Api-Key: \xff\xfe" + API_KEY.encode(), b"X-Api-Key: caf\xc3\xa9-key"]
CASES = [(path, header) for path in ("/api/v1/me", "/api/observability", "/metrics")
         for header in BAD_KEYS] + [("/api/v1/me", b"Authorization: Bearer \xff.a.b")]


@pytest.mark.parametrize(("path", "header"), CASES)
async def test_credentials_that_are_not_ascii_are_refused_with_401(
        client: TestClient[web.Request, web.Application], path: str, header: bytes) -> None:
    request = (f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + header
               + b"\r\nConnection: close\r\n\r\n")
    response = await exchange(client.port, request)  # type: ignore[arg-type]
    assert response.status == 401, (response.status, response.body)
    assert "detail" in json.loads(response.body)
