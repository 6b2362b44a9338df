"""What each webhook does to the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import api
from members.premium import PremiumCache, PremiumInvalidator
from store.database import Database
from store.models import AuditLog, DiscordLink, GuildConfig, OutboxMessage, Reflection, User
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    auth_event,
    auth_user,
    encode,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

Client = TestClient[web.Request, web.Application]
Post = Callable[[str, Any], Awaitable[tuple[int, dict[str, Any]]]]
DISCORD_ID = 123456789012345678


@pytest.fixture
def premium_cache() -> PremiumCache:
    return PremiumCache()


@pytest.fixture
async def post(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
               database: Database, premium_cache: PremiumCache) -> Post:
    app = api.create_app(make_settings(**settings_overrides()), database=database,
                         premium=PremiumInvalidator(premium_cache))
    client: Client = await aiohttp_client(app)

    async def send(name: str, payload: Any) -> tuple[int, dict[str, Any]]:
        path, variable = PATHS[name]
        body = encode(payload)
        response = await client.post(path, data=body,
                                     headers=standard_headers(SECRETS[variable], body))
        return response.status, await response.json()

    return send


async def rows(database: Database, model: type[Any]) -> list[Any]:
    async with database.session() as session:
        return list((await session.scalars(select(model))).all())


async def test_auth_insert_creates_user_and_verified_discord_link(post: Post,
                                                                  database: Database) -> None:
    status, body = await post("supabase-auth", auth_event(discord_id=str(DISCORD_ID)))
    assert (status, body) == (200, {"status": "processed", "action": "upserted", "linked": True})
    (user,) = await rows(database, User)
    assert (user.id, user.email, user.display_name) == ("user-1", "a@example.com", "Ada")
    (link,) = await rows(database, DiscordLink)
    assert (link.user_id, link.discord_user_id) == ("user-1", DISCORD_ID)


async def test_auth_update_moves_a_discord_account_to_its_newest_owner(
        post: Post, database: Database) -> None:
    await post("supabase-auth", auth_event(user_id="u-old", discord_id=str(DISCORD_ID)))
    await post("supabase-auth", auth_event("UPDATE", user_id="u-new",
                                           discord_id=str(DISCORD_ID), email="b@example.com"))
    links = await rows(database, DiscordLink)
    assert [(link.user_id, link.discord_user_id) for link in links] == [("u-new", DISCORD_ID)]


async def test_a_provider_id_the_user_edits_links_nothing(post: Post, database: Database) -> None:
    """raw_user_meta_data is the user's to edit: after a genuine Discord sign-in, setting
    provider_id to someone else's Discord id (an owner's) must neither link the account to it
    nor take that Discord account from its owner."""
    owner_discord = DISCORD_ID + 1
    await post("supabase-auth", auth_event(user_id="owner", discord_id=str(owner_discord)))
    await post("supabase-auth", auth_event(user_id="mallory", discord_id=str(DISCORD_ID)))
    genuine = auth_user("mallory", str(DISCORD_ID), "a@example.com")
    _status, body = await post("supabase-auth", auth_event(
        "UPDATE", user_id="mallory", discord_id=str(owner_discord), before=genuine))
    assert body["linked"] is False
    links = {(link.user_id, link.discord_user_id) for link in await rows(database, DiscordLink)}
    assert links == {("owner", owner_discord), ("mallory", DISCORD_ID)}
    event = auth_event("UPDATE", user_id="mallory", discord_id=str(owner_discord))
    del event["old_record"]  # without it an edit cannot be told from Discord's own write
    assert (await post("supabase-auth", event))[1]["linked"] is False


async def test_auth_user_without_discord_gets_no_link(post: Post, database: Database) -> None:
    _status, body = await post("supabase-auth", auth_event())
    assert body["linked"] is False
    assert await rows(database, DiscordLink) == []


async def test_auth_delete_erases_like_gdpr(post: Post, database: Database) -> None:
    await post("supabase-auth", auth_event(discord_id=str(DISCORD_ID)))
    await post("reflections", {"action": "upsert", "reflection_id": "r1", "user_id": "user-1",
                               "text": "mine"})
    status, body = await post("supabase-auth", auth_event("DELETE"))
    assert status == 200
    assert body["erased"] == {"reflections": 1, "outbox": 0, "discord_links": 1, "users": 1}
    assert await rows(database, User) == []
    assert await rows(database, Reflection) == []


async def test_gdpr_erasure_removes_every_personal_row_and_keeps_hashed_audit(
        post: Post, database: Database) -> None:
    await post("supabase-auth", auth_event(discord_id=str(DISCORD_ID)))
    await post("reflections", {"action": "upsert", "reflection_id": "r1", "user_id": "user-1",
                               "text": "private thought"})
    await post("founder", {"user_id": "user-1", "message": "hello"})
    await post("supabase-auth", auth_event(user_id="someone-else", email="c@example.com"))

    status, body = await post("gdpr-erasure", {"user_id": "user-1"})
    assert status == 200
    assert body["erased"] == {"reflections": 1, "outbox": 1, "discord_links": 1, "users": 1}
    assert [user.id for user in await rows(database, User)] == ["someone-else"]

    again = await post("gdpr-erasure", {"user_id": "user-1"})
    assert again[1]["erased"] == {"reflections": 0, "outbox": 0, "discord_links": 0, "users": 0}

    audit = [row for row in await rows(database, AuditLog) if row.event == "gdpr.erasure"]
    assert len(audit) == 2
    assert audit[0].actor_hash == audit[1].actor_hash
    dumped = repr([(row.details, row.actor_hash) for row in audit])
    for personal in ("user-1", str(DISCORD_ID), "a@example.com", "private thought"):
        assert personal not in dumped


async def test_premium_invalidate_drops_the_cache_and_stores_the_new_status(
        post: Post, database: Database, premium_cache: PremiumCache) -> None:
    await post("supabase-auth", auth_event())
    premium_cache.set("user-1", False)
    status, body = await post("premium-invalidate", {"user_id": "user-1", "is_premium": True})
    assert (status, body) == (200, {"status": "processed", "invalidated": True})
    assert premium_cache.get("user-1") is None
    (user,) = await rows(database, User)
    assert user.is_premium is True


async def test_reflection_upsert_update_and_revoke(post: Post, database: Database) -> None:
    change = {"action": "upsert", "reflection_id": "r1", "user_id": "user-9", "text": "v1"}
    await post("reflections", change)
    await post("reflections", {**change, "text": "v2"})
    (row,) = await rows(database, Reflection)
    assert (row.text, row.revoked_at) == ("v2", None)
    _status, body = await post("reflections", {**change, "action": "revoke", "text": None})
    assert body == {"status": "processed", "action": "revoked", "found": True}
    (row,) = await rows(database, Reflection)
    assert row.text == ""
    assert row.revoked_at is not None


async def test_reflection_of_another_user_is_409(post: Post, database: Database) -> None:
    await post("reflections", {"action": "upsert", "reflection_id": "r1", "user_id": "a",
                               "text": "x"})
    status, _body = await post("reflections", {"action": "upsert", "reflection_id": "r1",
                                              "user_id": "b", "text": "steal"})
    assert status == 409
    (row,) = await rows(database, Reflection)
    assert (row.user_id, row.text) == ("a", "x")


async def test_founder_message_is_queued_sanitized(post: Post, database: Database) -> None:
    await post("supabase-auth", auth_event(discord_id=str(DISCORD_ID)))
    status, body = await post("founder", {"user_id": "user-1", "title": "Hi @everyone",
                                          "message": "**Welcome** <@&1> [x](javascript:alert(1))"})
    assert (status, body) == (200, {"status": "processed", "queued": 1})
    (entry,) = await rows(database, OutboxMessage)
    assert (entry.kind, entry.target_id, entry.status) == ("dm", DISCORD_ID, "pending")
    embed = entry.payload["embed"]
    assert "@everyone" not in embed["title"]
    assert "javascript:" not in embed["description"]
    assert "\\*\\*Welcome\\*\\*" in embed["description"]


async def test_founder_message_to_unlinked_user_is_409_and_queues_nothing(
        post: Post, database: Database) -> None:
    status, _body = await post("founder", {"user_id": "nobody", "message": "hi"})
    assert status == 409
    assert await rows(database, OutboxMessage) == []


async def test_legal_update_queues_one_post_per_configured_guild(post: Post,
                                                                 database: Database) -> None:
    async with database.transaction() as session:
        session.add_all([GuildConfig(guild_id=1, announcement_channel_id=11),
                         GuildConfig(guild_id=2, announcement_channel_id=22),
                         GuildConfig(guild_id=3, announcement_channel_id=None)])
    status, body = await post("legal-update", {
        "document": "privacy", "version": "2026-11", "url": "https://example.com/privacy",
        "summary": "We now keep less.", "effective_date": "2026-12-01"})
    assert (status, body) == (200, {"status": "processed", "queued": 2})
    entries = await rows(database, OutboxMessage)
    assert sorted(entry.target_id for entry in entries) == [11, 22]
    embed = entries[0].payload["embed"]
    assert embed["url"] == "https://example.com/privacy"
    assert embed["title"] == "Our Privacy Policy was updated"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd",
                                 "ftp://example.com/x", "vbscript:x"])
async def test_legal_update_refuses_non_http_links(post: Post, database: Database,
                                                   url: str) -> None:
    status, _ = await post("legal-update", {"document": "terms", "version": "1", "url": url})
    assert status == 422
    assert await rows(database, OutboxMessage) == []
