"""A cog that only tests load: it stands for a command added by an upgrade."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import for_everyone


class Extra(commands.Cog):
    @for_everyone()
    @app_commands.command(name="extra", description="A command added by an upgrade")
    async def extra(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message("extra", ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Extra())
