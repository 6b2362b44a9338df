"""One error handler for every app command and prefix command.

The user gets a short, private message (with an error id when something broke); the traceback
goes to the log under the same id; permission refusals are audit-logged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from command_kit.access import NotAdmin, NotOwner
from store import audit
from store.database import Database
from utils.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the user is told; `error_id` is set when this is a bug to log with a traceback."""

    message: str
    error_id: str | None = None


def describe(error: Exception) -> Reply:
    if isinstance(error, NotOwner):
        return Reply("This command is for the bot's owners only.")
    if isinstance(error, NotAdmin):
        return Reply("This command is for server admins only.")
    if isinstance(error, app_commands.NoPrivateMessage):
        return Reply("This command works only in a server.")
    if isinstance(error, app_commands.CommandOnCooldown):
        return Reply(f"Slow down: try again in {error.retry_after:.0f} s.")
    if isinstance(error, app_commands.CheckFailure):
        return Reply("You can't use this command here.")
    error_id = uuid.uuid4().hex[:8]
    return Reply(f"Something went wrong (error id `{error_id}`). The team can look it up.",
                 error_id)


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
    reply = describe(original)
    command = interaction.command.qualified_name if interaction.command else "?"
    stats = getattr(interaction.client, "command_stats", None)
    if stats is not None:
        stats.record(command, failed=True)
    if reply.error_id is not None:
        log.error("command failed", command=command, error_id=reply.error_id,
                  exc_info=(type(original), original, original.__traceback__))
    elif isinstance(original, NotOwner | NotAdmin):
        database: Database = interaction.client.database
        await audit.record_best_effort(database, "command.denied", guild_id=interaction.guild_id,
                                       actor_id=interaction.user.id,
                                       details={"command": command})
    await reply_privately(interaction, reply.message)


async def on_prefix_command_error(context: commands.Context[Any],
                                  error: commands.CommandError) -> None:
    if isinstance(error, commands.CommandNotFound):
        return
    original = getattr(error, "original", error)
    reply = describe(original)
    if reply.error_id is not None:
        log.error("prefix command failed", error_id=reply.error_id,
                  exc_info=(type(original), original, original.__traceback__))
    await context.reply(reply.message, allowed_mentions=discord.AllowedMentions.none())
