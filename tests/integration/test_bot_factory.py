"""create_bot builds the production bot without touching the network."""

from __future__ import annotations

from collections.abc import Callable

import discord

import bot
from store.database import Database
from utils.config import Settings


async def test_create_bot_is_offline_and_safe_by_default(
        make_settings: Callable[..., Settings], database: Database) -> None:
    settings = make_settings(shard_count=4, shard_ids="1,2")
    client = bot.create_bot(settings, database=database)
    try:
        assert not client.is_ready()
        assert client.allowed_mentions is not None
        assert client.allowed_mentions.to_dict() == discord.AllowedMentions.none().to_dict()
        assert client.shard_count == 4
        assert client.shard_ids == [1, 2]
        assert not client.intents.message_content
        assert client.http.max_ratelimit_timeout == 30  # a long 429 raises, never stalls a send
        await client.setup_hook()
        assert "ping" in {command.name for command in client.tree.get_commands()}
        assert client.database is database
    finally:
        await client.close()


async def test_rest_base_follows_settings(make_settings: Callable[..., Settings],
                                          database: Database) -> None:
    original = discord.http.Route.BASE
    try:
        client = bot.create_bot(make_settings(discord_api_base="http://127.0.0.1:9/api/v10/"),
                                database=database)
        assert discord.http.Route.BASE == "http://127.0.0.1:9/api/v10"
        await client.close()
    finally:
        discord.http.Route.BASE = original
