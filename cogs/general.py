"""Commands for everyone: `/ping`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

if TYPE_CHECKING:
    from bot import CommunityBot


def latency_text(gateway_seconds: float) -> str:
    """Gateway latency in ms; discord.py reports inf/nan before the first heartbeat."""
    if gateway_seconds != gateway_seconds or gateway_seconds == float("inf"):
        return "Pong! Gateway latency: not measured yet."
    return f"Pong! Gateway latency: {gateway_seconds * 1000:.0f} ms."


class General(commands.Cog):
    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot

    @app_commands.command(name="ping", description="Check that the bot answers")
    async def ping(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(latency_text(self.bot.latency), ephemeral=True)


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(General(bot))
