"""The Google half wired into the running API: Drive sync and knowledge search over HTTP, and
Secret Manager references that rotate without a restart. Real Google client libraries against
the loopback stand-in; nothing may leave 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

import api
from harness.google_standins import FakeClock, GoogleStandIn
from harness.pdf_factory import make_pdf
from harness.signing import standard_headers
from knowledge.service import KnowledgeBase
from store.database import Database
from utils.config import ConfigError, Settings
from utils.secret_manager import SecretManager
from utils.secret_values import SecretValues

KEY = "operator-key-0123456789abcdefghijklmnop"
TTL = 60.0


async def test_drive_sync_over_http_then_search_finds_the_page(
        google: GoogleStandIn, database: Database, make_settings: Callable[..., Settings],
        aiohttp_client: Callable[..., Any]) -> None:
    google.add_pdf("Handbook.pdf", make_pdf(["Welcome.", "Onboarding.", "The wombat burrows."]))
    google.add_pdf("Guide.pdf", make_pdf(["Nothing about that animal here."]))
    settings = make_settings(api_key=KEY, google_credentials_json=google.key_json(),
                             drive_folder_id=google.folder_id,
                             drive_api_endpoint=google.drive_endpoint)
    knowledge = KnowledgeBase.open(settings, database)
    client = await aiohttp_client(api.create_app(settings, database=database,
                                                 knowledge=knowledge))
    headers = {"X-Api-Key": KEY}
    try:
        started = await client.post("/api/v1/drive/sync", headers=headers)
        assert started.status == 202
        sync_id = (await started.json())["sync_id"]
        assert isinstance(sync_id, str)
        deadline = time.monotonic() + 20
        while True:
            status = await (await client.get(f"/api/v1/drive/sync/{sync_id}",
                                             headers=headers)).json()
            if status["status"] != "running":
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert (status["status"], status["files_total"], status["downloaded"],
                status["skipped"], status["removed"]) == ("done", 2, 2, 0, 0)
        found = await (await client.get("/api/v1/knowledge/search?q=wombat",
                                        headers=headers)).json()
        assert found["total"] == 1
        assert (found["items"][0]["document"], found["items"][0]["page"]) == ("Handbook.pdf", 3)
        missing = await client.get("/api/v1/drive/sync/999999", headers=headers)
        assert missing.status == 404
        bad = await client.get("/api/v1/drive/sync/%D9%A1", headers=headers)
        assert bad.status == 404  # an Arabic-Indic digit is not an id
        for query in ("", "x" * 201):
            assert (await client.get("/api/v1/knowledge/search", params={"q": query},
                                     headers=headers)).status == 422
    finally:
        await knowledge.close()


async def test_rotated_api_key_and_webhook_secret_take_effect_without_a_restart(
        google: GoogleStandIn, database: Database, make_settings: Callable[..., Settings],
        aiohttp_client: Callable[..., Any]) -> None:
    old_hook, new_hook = "whsec_b2xkLXdlYmhvb2stc2VjcmV0LTEyMw==", \
        "whsec_bmV3LXdlYmhvb2stc2VjcmV0LTQ1Ng=="
    google.set_secret("api-key", KEY)
    google.set_secret("legal-hook", old_hook)
    clock = FakeClock()
    settings = make_settings(google_project_id=google.key.project_id, api_key="gsm:api-key",
                             legal_update_webhook_secret="gsm:legal-hook",
                             webhooks_enabled="legal-update")
    manager = SecretManager(google.key.project_id, credentials_json=google.key_json(),
                            api_endpoint=google.url, ttl=TTL, negative_ttl=5, clock=clock)
    secrets = SecretValues(settings, manager)
    assert await secrets.resolve_all() == []
    client = await aiohttp_client(api.create_app(settings, database=database, secrets=secrets))

    async def legal_update(secret: str) -> int:
        body = b'{"document": "terms", "version": "7", "url": "https://example.com/t"}'
        response = await client.post("/webhooks/legal-update", data=body,
                                     headers=standard_headers(secret, body))
        return response.status

    try:
        assert (await client.get("/api/v1/me", headers={"X-Api-Key": KEY})).status == 200
        assert await legal_update(old_hook) == 200

        google.set_secret("api-key", KEY + "-rotated")
        google.set_secret("legal-hook", new_hook)
        clock.advance(TTL + 1)
        assert await secrets.refresh_due() == []
        assert (await client.get("/api/v1/me", headers={"X-Api-Key": KEY})).status == 401
        assert (await client.get("/api/v1/me",
                                 headers={"X-Api-Key": KEY + "-rotated"})).status == 200
        # During a webhook rotation the old secret still opens the door for one TTL.
        assert await legal_update(new_hook) == 200
        assert await legal_update(old_hook) == 200
        clock.advance(TTL + 1)
        assert await legal_update(old_hook) == 401
        assert await legal_update(new_hook) == 200
    finally:
        await manager.close()


async def test_redis_url_from_secret_manager_is_the_redis_the_api_uses(
        google: GoogleStandIn, database: Database, make_settings: Callable[..., Settings],
        redis_url: str, aiohttp_client: Callable[..., Any]) -> None:
    google.set_secret("redis-url", redis_url)
    settings = make_settings(google_project_id=google.key.project_id, redis_url="gsm:redis-url",
                             rate_limit_backend="redis")
    manager = SecretManager(google.key.project_id, credentials_json=google.key_json(),
                            api_endpoint=google.url)
    secrets = SecretValues(settings, manager)
    try:
        assert await secrets.resolve_all() == []
        client = await aiohttp_client(api.create_app(settings, database=database,
                                                     secrets=secrets))
        ready = await (await client.get("/readyz")).json()
        assert ready["checks"]["redis"] == "ok"
    finally:
        await manager.close()


@pytest.mark.parametrize("stored", [None, "http://bot:hunter2-password@cache:1"])
async def test_a_redis_url_that_cannot_be_used_is_a_configuration_error(
        google: GoogleStandIn, database: Database, make_settings: Callable[..., Settings],
        stored: str | None) -> None:
    """The reference names no secret, or one holding no Redis URL (a literal one is refused
    with the settings: tests/unit/test_config.py)."""
    if stored is not None:
        google.set_secret("redis-url", stored)
    settings = make_settings(google_project_id=google.key.project_id, redis_url="gsm:redis-url")
    manager = SecretManager(google.key.project_id, credentials_json=google.key_json(),
                            api_endpoint=google.url)
    secrets = SecretValues(settings, manager)
    try:
        await secrets.resolve_all()
        with pytest.raises(ConfigError) as caught:
            api.create_app(settings, database=database, secrets=secrets)
    finally:
        await manager.close()
    assert [problem.split(":")[0] for problem in caught.value.problems] == ["REDIS_URL"]
    assert "hunter2" not in str(caught.value)
