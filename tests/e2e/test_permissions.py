"""Every registered command declares who may run it, and its checks enforce exactly that."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest
from discord import app_commands

import bot
from cogs.general import LEVELS, commands_for
from command_kit.access import access_of
from store.database import Database
from tests.support.discord_support import running_bot
from tests.support.fake_discord import ADMINISTRATOR, FakeDiscord
from utils.config import Settings

GUILD = 1 << 22 | 9
OWNER, ADMIN, ROLE_ADMIN, MEMBER, POWER_MEMBER = 11, 12, 13, 14, 15
ADMIN_ROLE = 777
EXPECTED = {
    "ping": "member", "help": "member", "learn": "member", "premium": "member",
    "reflections": "member", "delete_my_data": "member", "export_my_data": "member",
    "config show": "admin", "config set": "admin", "audit recent": "admin", "announce": "admin",
    "migrate status": "owner", "migrate upgrade": "owner", "migrate downgrade": "owner",
    "drive sync": "owner", "secrets refresh": "owner", "reload": "owner", "sync": "owner",
}


CALLERS = [  # user, Discord permissions, roles, the level they should get
    (MEMBER, 0, (), "member"),
    (POWER_MEMBER, (1 << 53) - 1 - ADMINISTRATOR, (), "member"),  # all but Administrator
    (ADMIN, ADMINISTRATOR, (), "admin"),
    (ROLE_ADMIN, 0, (ADMIN_ROLE,), "admin"),
    (OWNER, 0, (), "owner"),
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    for index in range(len(CALLERS)):  # a guild per caller: cooldowns never mix with checks
        guild = server.add_guild(GUILD + (index << 22))
        guild.roles[ADMIN_ROLE] = 0  # as in Discord: a member's roles are the guild's roles
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def online_bot(fake: FakeDiscord, make_settings: Callable[..., Settings],
                     database: Database) -> AsyncIterator[bot.CommunityBot]:
    settings = make_settings(owner_ids=str(OWNER), admin_role_id=str(ADMIN_ROLE))
    async with running_bot(fake, settings, database) as client:
        yield client


def leaf_commands(client: bot.CommunityBot) -> dict[str, app_commands.Command[Any, ..., Any]]:
    return {command.qualified_name: command for command in client.tree.walk_commands()
            if isinstance(command, app_commands.Command)}


def interaction_for(client: bot.CommunityBot, fake: FakeDiscord, user_id: int, *,
                    guild_id: int = GUILD, permissions: int = 0,
                    roles: tuple[int, ...] = ()) -> discord.Interaction[Any]:
    payload = fake.interaction("x", user_id=user_id, guild_id=guild_id, permissions=permissions,
                               roles=roles)
    return discord.Interaction(data=payload, state=client._connection)  # type: ignore[arg-type]


async def may_run(command: app_commands.Command[Any, ..., Any],
                  interaction: discord.Interaction[Any]) -> bool:
    try:
        return await command._check_can_run(interaction)
    except app_commands.CheckFailure:
        return False


async def test_every_command_declares_its_access(online_bot: bot.CommunityBot) -> None:
    declared = {name: access_of(command) for name, command in leaf_commands(online_bot).items()}
    assert declared == EXPECTED, "a new command needs for_everyone/validate_admin/requires_owner"




async def test_permission_matrix(online_bot: bot.CommunityBot, fake: FakeDiscord) -> None:
    for index, (user, permissions, roles, level) in enumerate(CALLERS):
        interaction = interaction_for(online_bot, fake, user, guild_id=GUILD + (index << 22),
                                      permissions=permissions, roles=roles)
        for name, command in leaf_commands(online_bot).items():
            allowed = LEVELS[level] >= LEVELS[EXPECTED[name]]  # type: ignore[index]
            assert await may_run(command, interaction) is allowed, (name, level, permissions)


async def test_help_lists_only_what_the_caller_may_run(online_bot: bot.CommunityBot) -> None:
    member = {line.split(" —")[0] for line in commands_for(online_bot.tree, "member")}
    owner = {line.split(" —")[0] for line in commands_for(online_bot.tree, "owner")}
    assert "/ping" in member
    assert "/migrate downgrade" not in member
    assert "/config set" not in member
    assert owner == {f"/{name}" for name in EXPECTED}
