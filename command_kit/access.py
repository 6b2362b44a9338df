"""Who may run what: `requires_owner()` and `validate_admin()` as app-command checks.

Owner and admin ids come from settings only. Each check also records the access level in the
command's `extras["access"]`, and `for_everyone()` declares a public command, so a test can
enumerate every command and fail on one that declares nothing. The decorators go above
`@app_commands.command`, where they receive the command object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import discord
from discord import app_commands

from utils.config import Settings

Access = Literal["member", "admin", "owner"]
T = TypeVar("T")


class NotOwner(app_commands.CheckFailure):
    """Only the bot's owners (OWNER_IDS) may run this."""


class NotAdmin(app_commands.CheckFailure):
    """Only an owner, an ADMIN_ROLE_ID holder or a guild Administrator may run this."""


def settings_of(interaction: discord.Interaction[Any]) -> Settings:
    settings: Settings = interaction.client.settings
    return settings


def is_owner(settings: Settings, user_id: int) -> bool:
    return user_id in settings.owner_ids


def holds_admin(settings: Settings, user_id: int, role_ids: Iterable[int],
                administrator: bool) -> bool:
    """The one admin rule: an owner, a holder of an ADMIN_ROLE_ID role, or an Administrator."""
    return is_owner(settings, user_id) or administrator or any(
        role_id in settings.admin_role_id for role_id in role_ids)


def is_admin(settings: Settings, interaction: discord.Interaction[Any]) -> bool:
    """`holds_admin` for the caller of a command (outside a guild only owners qualify)."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        return is_owner(settings, interaction.user.id)
    # Roles resolve through the guild cache (the guilds intent fills it at connect). A guild
    # not cached yet yields no roles: that fails closed, and Administrator still counts, since
    # Discord computes `interaction.permissions` itself.
    return holds_admin(settings, interaction.user.id,
                       (role.id for role in interaction.user.roles),
                       interaction.permissions.administrator)


def _declare(access: Access) -> Callable[[T], T]:
    def decorate(command: T) -> T:
        if not isinstance(command, app_commands.Command):
            raise TypeError("put access decorators above @app_commands.command")
        command.extras["access"] = access
        return command

    return decorate


def access_of(command: app_commands.Command[Any, ..., Any]) -> Access | None:
    access = command.extras.get("access")
    return access if access in ("member", "admin", "owner") else None


def for_everyone() -> Callable[[T], T]:
    return _declare("member")


def declare_owner_cog(cog: Any) -> None:
    """Mark every app command of an owner-only cog as such (the cog's `interaction_check`
    enforces it), so /help and the permission matrix see the level."""
    for command in cog.walk_app_commands():
        if isinstance(command, app_commands.Command):
            command.extras["access"] = "owner"


def check_owner(interaction: discord.Interaction[Any]) -> bool:
    """True for an owner; raises NotOwner (answered by the error handler) for anyone else."""
    if is_owner(settings_of(interaction), interaction.user.id):
        return True
    raise NotOwner("owner only")


def requires_owner() -> Callable[[T], T]:
    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        return check_owner(interaction)

    check = app_commands.check(predicate)
    declare = _declare("owner")
    return lambda command: declare(check(command))


def validate_admin() -> Callable[[T], T]:
    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        if is_admin(settings_of(interaction), interaction):
            return True
        raise NotAdmin("admin only")

    check = app_commands.check(predicate)
    declare = _declare("admin")
    return lambda command: declare(guild_only(check(command)))


def guild_only(command: T) -> T:
    return app_commands.guild_only()(command)
