"""Publishing the slash commands, and the invite link with what they need.

Discord knows a command only after a sync, so a fresh install syncs by itself: at start the bot
compares a fingerprint of its command tree with the one it last synced (kept in the database)
and syncs when they differ. An unchanged restart makes no sync call, which matters because
Discord rate-limits command syncs per application.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import discord
from discord import app_commands

from store import app_state
from store.database import Database
from utils.logging import get_logger

log = get_logger(__name__)

SYNCED_TREE_KEY = "command_tree_sha256"
INVITE_SCOPES = ("bot", "applications.commands")
# What the bot does in a server, and the permission each needs (DMs need none).
NEEDED_PERMISSIONS: dict[str, str] = {
    "view_channel": "see the channel configured for announcements",
    "send_messages": "/announce and the legal-update webhook post there",
    "embed_links": "those posts are embeds",
}


def needed_permissions() -> discord.Permissions:
    return discord.Permissions(**dict.fromkeys(NEEDED_PERMISSIONS, True))


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot to a server with the scopes and permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=needed_permissions(),
                                   scopes=INVITE_SCOPES)


def tree_fingerprint(tree: app_commands.CommandTree[Any]) -> str:
    """SHA-256 of the global commands as Discord would receive them."""
    payload = sorted((command.to_dict(tree) for command in tree.get_commands()),
                     key=lambda command: str(command["name"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def sync_globally(tree: app_commands.CommandTree[Any], database: Database) -> int:
    """Publish the global commands everywhere and remember what was published."""
    synced = await tree.sync()
    await app_state.set_value(database, SYNCED_TREE_KEY, tree_fingerprint(tree))
    return len(synced)


async def sync_to_guild(tree: app_commands.CommandTree[Any], guild_id: int) -> int:
    """Copy the global commands to one guild: they appear there at once (for testing)."""
    guild = discord.Object(id=guild_id)
    tree.copy_global_to(guild=guild)
    return len(await tree.sync(guild=guild))


async def sync_if_changed(tree: app_commands.CommandTree[Any], database: Database) -> bool:
    """Sync when the tree differs from the last synced one; True when it synced."""
    if await app_state.get_value(database, SYNCED_TREE_KEY) == tree_fingerprint(tree):
        return False
    count = await sync_globally(tree, database)
    log.info("slash commands published (the command tree changed)", commands=count)
    return True
