"""Commands for everyone: `/ping` and `/help`."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import Access, access_of, for_everyone, is_admin, is_owner

if TYPE_CHECKING:
    from bot import CommunityBot

LEVELS: dict[Access, int] = {"member": 0, "admin": 1, "owner": 2}


def latency_text(gateway_seconds: float, api_seconds: float | None = None) -> str:
    """Gateway latency in ms; discord.py reports inf/nan before the first heartbeat."""
    gateway = "not measured yet" if not math.isfinite(gateway_seconds) \
        else f"{gateway_seconds * 1000:.0f} ms"
    text = f"Pong! Gateway latency: {gateway}."
    if api_seconds is not None:
        text += f" API round trip: {api_seconds * 1000:.0f} ms."
    return text


def caller_level(bot: CommunityBot, interaction: discord.Interaction[Any]) -> Access:
    if is_owner(bot.settings, interaction.user.id):
        return "owner"
    return "admin" if is_admin(bot.settings, interaction) else "member"


def commands_for(tree: app_commands.CommandTree[Any], level: Access) -> list[str]:
    """Every command (with subcommands) the given level may run, as `/name sub` lines."""
    allowed = []
    for command in tree.walk_commands():
        if isinstance(command, app_commands.Command):
            access = access_of(command)
            if access is not None and LEVELS[access] <= LEVELS[level]:
                allowed.append(f"/{command.qualified_name} — {command.description}")
    return sorted(allowed)


class General(commands.Cog):
    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot

    @for_everyone()
    @app_commands.command(name="ping", description="Check that the bot answers")
    async def ping(self, interaction: discord.Interaction[Any]) -> None:
        started = time.perf_counter()
        await interaction.response.send_message(latency_text(self.bot.latency), ephemeral=True)
        api_seconds = time.perf_counter() - started
        await interaction.edit_original_response(
            content=latency_text(self.bot.latency, api_seconds))

    @for_everyone()
    @app_commands.command(name="help", description="List the commands you can use")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        lines = commands_for(self.bot.tree, caller_level(self.bot, interaction))
        await interaction.response.send_message("\n".join(lines) or "No commands.",
                                                ephemeral=True)


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(General(bot))
