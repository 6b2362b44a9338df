"""A member's own account: `/premium`, `/reflections`, `/delete_my_data`, `/export_my_data`."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import for_everyone
from command_kit.confirm import ConfirmView
from members.erasure import erase_person
from members.premium import premium_status
from store import accounts, personal_data
from utils.sanitize import EMBED_FIELD_VALUE_LIMIT, EMBED_TOTAL_LIMIT, safe_embed_text

if TYPE_CHECKING:
    from bot import CommunityBot

NONE = discord.AllowedMentions.none()


def per_user(interaction: discord.Interaction[Any]) -> int:
    return interaction.user.id


class Account(commands.Cog):
    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot

    @for_everyone()
    @app_commands.command(name="premium", description="Show your premium status")
    async def premium(self, interaction: discord.Interaction[Any]) -> None:
        status = await premium_status(self.bot.database, self.bot.premium.cache,
                                      interaction.user.id)
        if not status.linked:
            text = "Your Discord account is not linked to an account on our app yet."
        else:
            text = "You have premium. Thank you!" if status.premium else \
                "You don't have premium."
        await interaction.response.send_message(text, ephemeral=True)

    @for_everyone()
    @app_commands.command(name="reflections", description="Show the reflections you shared")
    async def reflections(self, interaction: discord.Interaction[Any]) -> None:
        texts = await accounts.shared_reflections(self.bot.database, interaction.user.id)
        if not texts:
            await interaction.response.send_message("You have no shared reflections.",
                                                    ephemeral=True)
            return
        title = "Your shared reflections"
        names = [f"#{index}" for index in range(1, len(texts) + 1)]
        # One embed holds 6,000 characters in all (Discord refuses more): each reflection gets
        # an equal share of what the title and field names leave, up to a field's own limit.
        share = min(EMBED_FIELD_VALUE_LIMIT,
                    (EMBED_TOTAL_LIMIT - len(title) - sum(map(len, names))) // len(texts))
        embed = discord.Embed(title=title)
        for name, text in zip(names, texts, strict=True):
            embed.add_field(name=name, inline=False,
                            value=safe_embed_text(text, share) or "(empty)")
        await interaction.response.send_message(embed=embed, ephemeral=True,
                                                allowed_mentions=NONE)

    @for_everyone()
    @app_commands.checks.cooldown(1, 60.0, key=per_user)
    @app_commands.command(name="delete_my_data", description="Erase everything we hold on you")
    async def delete_my_data(self, interaction: discord.Interaction[Any]) -> None:
        view = ConfirmView(interaction.user.id)
        await interaction.response.send_message(
            "This erases your linked account, reflections and pending messages. It cannot be "
            "undone. Continue?", view=view, ephemeral=True)
        await view.wait()
        if not view.confirmed or view.answer is None:
            await interaction.edit_original_response(content="Nothing was deleted.", view=None)
            return
        async with self.bot.database.transaction() as session:
            erasure = await erase_person(session, self.bot.premium, source="discord-command",
                                         discord_user_id=interaction.user.id)
        await view.answer.response.edit_message(
            content=f"Done. Rows erased: {erasure.total}.", view=None)

    @for_everyone()
    @app_commands.checks.cooldown(1, 60.0, key=per_user)
    @app_commands.command(name="export_my_data", description="Get a copy of your data")
    async def export_my_data(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.database.session() as session:
            identity = await personal_data.resolve_identity(
                session, discord_user_id=interaction.user.id)
            exported = await personal_data.export(session, identity)
        data = json.dumps({"discord_user_id": interaction.user.id, "tables": exported},
                          indent=2, default=str).encode()
        await interaction.followup.send(
            "Here is everything we hold on you.", ephemeral=True,
            file=discord.File(io.BytesIO(data), filename="my-data.json"))


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(Account(bot))
