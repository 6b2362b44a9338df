"""`/learn <topic>`: answers from the knowledge base built from the Drive folder's PDFs.

The question passes `safe_prompt` first (a steering attempt is refused, audited, and never
reaches the LLM); the answer streams into the reply (one edit a second at most), pings no one
and ends with its sources.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import for_everyone
from store import audit
from utils.sanitize import EMBED_DESCRIPTION_LIMIT, safe_embed_text

if TYPE_CHECKING:
    from bot import CommunityBot

NONE = discord.AllowedMentions.none()
EDIT_INTERVAL_SECONDS = 1.0


def learn_cooldown(interaction: discord.Interaction[Any]) -> app_commands.Cooldown:
    """One question per user per LEARN_COOLDOWN_SECONDS."""
    seconds = float(interaction.client.settings.learn_cooldown_seconds)
    return app_commands.Cooldown(1, seconds)


class Knowledge(commands.Cog):
    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot

    @for_everyone()
    @app_commands.checks.dynamic_cooldown(learn_cooldown, key=lambda i: i.user.id)
    @app_commands.command(name="learn", description="Ask the community knowledge base")
    @app_commands.describe(topic="What you want to learn about")
    async def learn(self, interaction: discord.Interaction[Any],
                    topic: app_commands.Range[str, 1, 200]) -> None:
        await interaction.response.defer(thinking=True)
        last_edit = [0.0]

        async def stream(text_so_far: str) -> None:
            now = time.monotonic()
            if now - last_edit[0] < EDIT_INTERVAL_SECONDS:
                return
            last_edit[0] = now
            preview = safe_embed_text(text_so_far, EMBED_DESCRIPTION_LIMIT - 2) + " …"
            await interaction.edit_original_response(
                embed=discord.Embed(description=preview), allowed_mentions=NONE)

        answer = await self.bot.knowledge.answer(topic, interaction.guild_id, on_text=stream)
        if answer.mode == "refused":
            await audit.record_best_effort(
                self.bot.database, "learn.refused", guild_id=interaction.guild_id,
                actor_id=interaction.user.id, details={"reasons": list(answer.reasons)[:5]})
        await interaction.edit_original_response(
            embed=discord.Embed(description=answer.text), allowed_mentions=NONE)


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(Knowledge(bot))
