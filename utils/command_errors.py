"""One error handler for every app command and prefix command.

The user gets a short, private message (with an error id when something broke); the traceback
goes to the log under the same id; permission refusals are audit-logged.
"""

from __future__ import annotations

import uuid
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from store import audit
from store.database import Database
from utils.logging import get_logger
from utils.validators import NotAdmin, NotOwner

log = get_logger(__name__)


def describe(error: Exception) -> tuple[str, bool]:
    """(message for the user, whether this is a bug to log with a traceback)."""
    if isinstance(error, NotOwner):
        return "This command is for the bot's owners only.", False
    if isinstance(error, NotAdmin):
        return "This command is for server admins only.", False
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works only in a server.", False
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s.", False
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here.", False
    error_id = uuid.uuid4().hex[:8]
    return f"Something went wrong (error id `{error_id}`). The team can look it up.", True


async def reply_privately(interaction: discord.Interaction[Any], text: str) -> None:
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True,
                                            allowed_mentions=discord.AllowedMentions.none())
        else:
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:  # the interaction may have expired
        log.warning("could not send the error reply", status=exc.status)


async def on_app_command_error(interaction: discord.Interaction[Any],
                               error: app_commands.AppCommandError) -> None:
    original = getattr(error, "original", error)
    message, is_bug = describe(original)
    command = interaction.command.qualified_name if interaction.command else "?"
    stats = getattr(interaction.client, "command_stats", None)
    if stats is not None:
        stats.record(command, failed=True)
    if is_bug:
        log.error("command failed", command=command, error_id=message.split("`")[1],
                  exc_info=(type(original), original, original.__traceback__))
    elif isinstance(original, NotOwner | NotAdmin):
        await _audit_denial(interaction, command)
    await reply_privately(interaction, message)


async def _audit_denial(interaction: discord.Interaction[Any], command: str) -> None:
    database: Database = interaction.client.database
    try:
        async with database.transaction() as session:
            await audit.record(session, "command.denied", guild_id=interaction.guild_id,
                               actor_id=interaction.user.id, details={"command": command})
    except Exception as exc:
        log.warning("could not audit a denied command", error_type=type(exc).__name__)


async def on_prefix_command_error(context: commands.Context[Any],
                                  error: commands.CommandError) -> None:
    if isinstance(error, commands.CommandNotFound):
        return
    original = getattr(error, "original", error)
    message, is_bug = describe(original)
    if is_bug:
        log.error("prefix command failed", error_id=message.split("`")[1],
                  exc_info=(type(original), original, original.__traceback__))
    await context.reply(message, allowed_mentions=discord.AllowedMentions.none())
