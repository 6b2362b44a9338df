"""Run the real bot against the fake Discord inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord

import bot
from members.premium import PremiumInvalidator
from store.database import Database
from tests.support.fake_discord import FakeDiscord
from utils.config import Settings

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.fake-token-for-the-fake-discord-xyz"


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, settings: Settings, database: Database, *,
                      premium: PremiumInvalidator | None = None,
                      ) -> AsyncIterator[bot.CommunityBot]:
    """The production bot, logged in to the fake and ready; closed afterwards."""
    original_base = discord.http.Route.BASE
    original_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    client = bot.create_bot(settings.model_copy(update={
        "discord_api_base": fake.api_base, "discord_gateway_url": fake.gateway_url}),
        database=database, premium=premium)
    task = asyncio.create_task(client.start(TOKEN))
    try:
        await wait_until(client.is_ready, task)
        yield client
    finally:
        await client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        discord.http.Route.BASE = original_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = original_gateway


async def wait_until(condition: Callable[[], bool], task: asyncio.Task[Any] | None = None,
                     limit_seconds: float = 15.0) -> None:
    async with asyncio.timeout(limit_seconds):
        while not condition():
            if task is not None and task.done():
                task.result()  # raise what stopped the bot
                raise RuntimeError("bot stopped before the condition held")
            await asyncio.sleep(0.02)
