"""`/learn <topic>`: answers from the knowledge base built from the Drive folder's PDFs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import for_everyone

if TYPE_CHECKING:
    from bot import CommunityBot

NOT_CONFIGURED = ("The knowledge base is not set up on this bot yet (no Drive folder is "
                  "configured), so I can't answer from it.")


class Knowledge(commands.Cog):
    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot

    @for_everyone()
    @app_commands.checks.cooldown(1, 10.0, key=lambda interaction: interaction.user.id)
    @app_commands.command(name="learn", description="Ask the community knowledge base")
    @app_commands.describe(topic="What you want to learn about")
    async def learn(self, interaction: discord.Interaction[Any],
                    topic: app_commands.Range[str, 1, 200]) -> None:
        # The Drive sync and search land with the Google integration; until then, say so.
        await interaction.response.send_message(NOT_CONFIGURED, ephemeral=True)


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(Knowledge(bot))
