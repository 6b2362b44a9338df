"""The real discord.py client against the loopback fake Discord."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import api
from delivery.discord_delivery import deliver
from harness.process import base_env, free_port, start_bot, wait_until_ready
from store import outbox
from store.database import Database
from store.models import GuildConfig
from tests.support.discord_support import running_bot
from tests.support.fake_discord import APPLICATION_ID, FakeDiscord
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    auth_event,
    encode,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

GUILD = 1 << 22 | 5
MEMBER = 123456789012345678


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild(GUILD, owner_id=1)
    await server.start()
    yield server
    await server.stop()


async def test_bot_logs_in_identifies_and_answers_ping(
        fake: FakeDiscord, make_settings: Callable[..., Settings], database: Database) -> None:
    async with running_bot(fake, make_settings(), database) as client:
        assert fake.identified == [[0, 1]]
        assert [guild.id for guild in client.guilds] == [GUILD]
        interaction = fake.interaction("ping", user_id=MEMBER, guild_id=GUILD)
        await fake.dispatch("INTERACTION_CREATE", interaction)
        callback = await fake.wait_for(lambda r: r.path.endswith(
            f"/{interaction['id']}/{interaction['token']}/callback"))
        assert callback.body["type"] == 4
        assert callback.body["data"]["content"].startswith("Pong!")
        assert callback.body["data"]["flags"] & 64  # ephemeral
        assert callback.body["data"]["allowed_mentions"] == {"parse": []}
    assert len(fake.sent("PUT", rf"/applications/{APPLICATION_ID}/commands")) == 1, \
        "a new database: the command tree is published once at start"


async def test_outbox_delivers_queued_dm_and_post_once_when_the_bot_comes_online(
        fake: FakeDiscord, make_settings: Callable[..., Settings], database: Database,
        aiohttp_client: Callable[..., Any]) -> None:
    settings = make_settings(**settings_overrides())
    client = await aiohttp_client(api.create_app(settings, database=database))
    async with database.transaction() as session:
        session.add(GuildConfig(guild_id=GUILD, announcement_channel_id=GUILD + 1))

    async def post(name: str, payload: dict[str, Any]) -> None:
        path, variable = PATHS[name]
        body = encode(payload)
        response = await client.post(path, data=body,
                                     headers=standard_headers(SECRETS[variable], body))
        assert response.status == 200, await response.text()

    # The bot is offline: webhooks are accepted and their Discord work waits in the outbox.
    await post("supabase-auth", auth_event(discord_id=str(MEMBER)))
    await post("founder", {"user_id": "user-1", "message": "Hi @everyone <@&1>"})
    await post("legal-update", {"document": "terms", "version": "3",
                                "url": "https://example.com/terms"})
    assert fake.requests == []

    async with running_bot(fake, settings, database) as bot_client:
        dm = await fake.wait_for(lambda r: r.path == f"/channels/{MEMBER + 7}/messages")
        post_request = await fake.wait_for(lambda r: r.path == f"/channels/{GUILD + 1}/messages")
        for _ in range(3):  # more rounds must not send anything again
            await bot_client.outbox.run_once()
    assert len(fake.sent("POST", rf"/channels/{MEMBER + 7}/messages")) == 1
    assert len(fake.sent("POST", rf"/channels/{GUILD + 1}/messages")) == 1
    for sent in (dm, post_request):
        assert sent.body["allowed_mentions"] == {"parse": []}
        assert sent.body["nonce"].startswith("outbox-")
        assert sent.body["enforce_nonce"] is True
    assert "@everyone" not in json.dumps(dm.body)
    assert await outbox.counts(database) == {"pending": 0, "sending": 0, "sent": 2, "dead": 0}


async def test_outbox_dead_letters_a_dm_discord_refuses(
        fake: FakeDiscord, make_settings: Callable[..., Settings], database: Database) -> None:
    fake.fail(rf"/channels/{MEMBER + 7}/messages", 403, code=50007)  # DMs closed
    async with database.transaction() as session:
        await outbox.enqueue(session, kind="dm", target_id=MEMBER, payload={"content": "hi"},
                             dedupe_key="closed")
    async with running_bot(fake, make_settings(), database):
        for _ in range(500):
            if (await outbox.counts(database))["dead"] == 1:
                break
            await asyncio.sleep(0.02)
    assert await outbox.counts(database) == {"pending": 0, "sending": 0, "sent": 0, "dead": 1}
    assert len(fake.sent("POST", rf"/channels/{MEMBER + 7}/messages")) == 1, "never retried"


async def test_a_range_of_shards_runs_in_this_process(
        make_settings: Callable[..., Settings], database: Database) -> None:
    server = FakeDiscord()
    for shard in range(3):  # a guild on each shard: guild_id >> 22 is the shard's remainder
        server.add_guild((shard << 22) | 1)
    await server.start()
    try:
        settings = make_settings(shard_count=3, shard_ids="1,2")
        async with running_bot(server, settings, database) as client:
            assert sorted(server.identified) == [[1, 3], [2, 3]]
            assert sorted(guild.id >> 22 for guild in client.guilds) == [1, 2]
    finally:
        await server.stop()


async def test_python_bot_py_runs_against_the_fake(fake: FakeDiscord, tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path, port, DISCORD_TOKEN="MTIz.fake.token-for-subprocess-test-xyz",
                   DISCORD_API_BASE=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url)
    process = start_bot(tmp_path, env)
    try:
        await asyncio.to_thread(wait_until_ready, port, process)  # needs the gateway too
        interaction = fake.interaction("ping", user_id=MEMBER, guild_id=GUILD)
        await fake.dispatch("INTERACTION_CREATE", interaction)
        reply = await fake.wait_for(lambda r: r.path.endswith("/callback"))
        assert reply.body["data"]["content"].startswith("Pong!")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "MTIz.fake.token" not in stderr


async def test_a_resend_after_a_crash_posts_once(
        fake: FakeDiscord, make_settings: Callable[..., Settings], database: Database) -> None:
    """Sent, then the process dies before marking it sent: the lease runs out, the entry is
    sent again with the same nonce, and Discord (enforce_nonce) creates no second message."""
    channel = GUILD + 1
    async with running_bot(fake, make_settings(), database) as client:
        await client.outbox.stop()  # drive the rounds by hand
        async with database.transaction() as session:
            await outbox.enqueue(session, kind="channel_message", target_id=channel,
                                 payload={"content": "terms updated"}, dedupe_key="crash-test")
        [entry] = await outbox.claim_due(database)
        await deliver(client, entry)  # ... and the process "crashes" before mark_sent
        later = entry.next_attempt_at + timedelta(minutes=10)  # the lease has run out
        [again] = await outbox.claim_due(database, now=later)
        assert again.id == entry.id
        await deliver(client, again)
        await outbox.mark_sent(database, again)
    posts = fake.sent("POST", rf"/channels/{channel}/messages")
    assert len(posts) == 2
    assert posts[0].body["nonce"] == posts[1].body["nonce"]
    assert len(fake.created[str(channel)]) == 1, "Discord must not create a second message"
    assert posts[0].response["id"] == posts[1].response["id"]
    assert await outbox.counts(database) == {"pending": 0, "sending": 0, "sent": 1, "dead": 0}
