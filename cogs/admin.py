"""Guild admin commands: `/config show|set`, `/audit recent`, `/announce`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import validate_admin
from store import audit, guild_settings
from utils.sanitize import EMBED_DESCRIPTION_LIMIT, EMBED_TITLE_LIMIT, safe_embed_text

if TYPE_CHECKING:
    from bot import CommunityBot

NONE = discord.AllowedMentions.none()


def describe_settings(settings: guild_settings.GuildSettings) -> str:
    channel = f"<#{settings.announcement_channel_id}>" if settings.announcement_channel_id \
        else "not set"
    return f"Announcement channel: {channel}"


def per_guild(interaction: discord.Interaction[Any]) -> int:
    return interaction.guild_id or interaction.user.id


class Admin(commands.Cog):
    config = app_commands.Group(name="config", description="This server's bot settings",
                                guild_only=True)
    audit_group = app_commands.Group(name="audit", description="This server's audit log",
                                     guild_only=True)

    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot

    @validate_admin()
    @config.command(name="show", description="Show this server's settings")
    async def config_show(self, interaction: discord.Interaction[Any]) -> None:
        assert interaction.guild_id is not None
        current = await guild_settings.get(self.bot.database, interaction.guild_id)
        await interaction.response.send_message(describe_settings(current), ephemeral=True,
                                                allowed_mentions=NONE)

    @validate_admin()
    @config.command(name="set", description="Change this server's settings")
    @app_commands.describe(announcement_channel="Where announcements are posted")
    async def config_set(self, interaction: discord.Interaction[Any],
                         announcement_channel: discord.TextChannel) -> None:
        assert interaction.guild_id is not None
        updated = await guild_settings.update(
            self.bot.database, interaction.guild_id, actor_id=interaction.user.id,
            source="discord", announcement_channel_id=announcement_channel.id)
        await interaction.response.send_message(f"Saved. {describe_settings(updated)}",
                                                ephemeral=True, allowed_mentions=NONE)

    @validate_admin()
    @audit_group.command(name="recent", description="The latest audit events of this server")
    async def audit_recent(self, interaction: discord.Interaction[Any],
                           limit: app_commands.Range[int, 1, 25] = 10) -> None:
        assert interaction.guild_id is not None
        entries, total = await guild_settings.recent_audit(self.bot.database,
                                                           interaction.guild_id, limit=limit)
        lines = [f"`{entry.created_at[:19]}` {entry.event}"
                 + (f" by `{entry.actor}`" if entry.actor else "") for entry in entries]
        text = "\n".join(lines) or "No audit events yet."
        # Event names and hashes are ours, not user text: nothing here needs escaping.
        await interaction.response.send_message(f"{text}\n({len(entries)} of {total})",
                                                ephemeral=True, allowed_mentions=NONE)

    @validate_admin()
    @app_commands.checks.cooldown(1, 30.0, key=per_guild)
    @app_commands.command(name="announce", description="Post an announcement embed")
    @app_commands.describe(channel="Where to post", title="Headline", message="The text")
    async def announce(self, interaction: discord.Interaction[Any],
                       channel: discord.TextChannel,
                       title: app_commands.Range[str, 1, EMBED_TITLE_LIMIT],
                       message: app_commands.Range[str, 1, 2000]) -> None:
        embed = discord.Embed(title=safe_embed_text(title, EMBED_TITLE_LIMIT),
                              description=safe_embed_text(message, EMBED_DESCRIPTION_LIMIT))
        await channel.send(embed=embed, allowed_mentions=NONE)
        async with self.bot.database.transaction() as session:
            await audit.record(session, "guild.announcement", guild_id=interaction.guild_id,
                               actor_id=interaction.user.id, details={"channel": str(channel.id)})
        await interaction.response.send_message("Posted.", ephemeral=True)


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(Admin(bot))
