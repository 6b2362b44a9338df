"""Owner-only commands (OWNER_IDS, never guild admins): migrations, sync, reload, Google.

The whole cog is guarded once by `interaction_check`; every command in it is owner-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs import EXTENSIONS
from command_kit.access import check_owner, declare_owner_cog
from command_kit.confirm import ConfirmView
from knowledge.progress import ProgressThrottle
from knowledge.service import SyncNotConfigured
from store import audit, migrate
from store.knowledge import SyncAlreadyRunning
from utils.sanitize import safe_code_block

if TYPE_CHECKING:
    from bot import CommunityBot


class Owner(commands.Cog):
    migrate_group = app_commands.Group(name="migrate", description="Database migrations")
    drive = app_commands.Group(name="drive", description="Google Drive knowledge base")
    secrets = app_commands.Group(name="secrets", description="Google Secret Manager")

    def __init__(self, bot: CommunityBot) -> None:
        self.bot = bot
        declare_owner_cog(self)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Every command of this cog, subcommands included: owners only."""
        return check_owner(interaction)

    async def _audit(self, interaction: discord.Interaction[Any], event: str,
                     **details: Any) -> None:
        async with self.bot.database.transaction() as session:
            await audit.record(session, event, guild_id=interaction.guild_id,
                               actor_id=interaction.user.id, details=details)

    @migrate_group.command(name="status", description="Current and head revisions")
    async def migrate_status(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        current = await migrate.current_async(self.bot.settings.database_url)
        await interaction.followup.send(
            safe_code_block(f"current: {current}\nhead: {migrate.head_revision()}"),
            ephemeral=True)

    @migrate_group.command(name="upgrade", description="Upgrade the database to head")
    async def migrate_upgrade(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        output = await migrate.upgrade_async(self.bot.settings.database_url)
        await self._audit(interaction, "owner.migrate.upgrade")
        await interaction.followup.send(safe_code_block(output), ephemeral=True)

    @migrate_group.command(name="downgrade", description="Undo the latest migration")
    async def migrate_downgrade(self, interaction: discord.Interaction[Any]) -> None:
        view = ConfirmView(interaction.user.id)
        await interaction.response.send_message(
            "Downgrade the database by one revision? Data in dropped tables is lost.",
            view=view, ephemeral=True)
        await view.wait()
        if not view.confirmed or view.answer is None:
            await interaction.edit_original_response(
                content="Downgrade cancelled." if view.confirmed is False
                else "Downgrade expired: nothing was changed.", view=None)
            return
        await view.answer.response.edit_message(content="Downgrading…", view=None)
        # Audited before it runs: the older schema may not have what auditing needs.
        await self._audit(interaction, "owner.migrate.downgrade")
        output = await migrate.downgrade_async(self.bot.settings.database_url, "-1")
        await interaction.edit_original_response(content=safe_code_block(output))

    @drive.command(name="sync", description="Sync the Drive folder into the knowledge base")
    async def drive_sync(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)

        async def progress(done: int, total: int) -> None:
            await interaction.edit_original_response(content=f"Syncing… {done}/{total} files")

        try:
            report = await self.bot.knowledge.sync_now(ProgressThrottle(progress, 1.0))
        except SyncNotConfigured:
            await interaction.edit_original_response(
                content="Drive sync is not configured on this bot (no DRIVE_FOLDER_ID).")
            return
        except SyncAlreadyRunning:
            await interaction.edit_original_response(
                content="A sync is already running (here or on another replica).")
            return
        await self._audit(interaction, "owner.drive.sync", sync_id=report.sync_id)
        await interaction.edit_original_response(content=(
            f"Drive sync {report.status} in {report.seconds:.1f} s: {report.files_total} files, "
            f"{report.downloaded} downloaded, {report.unchanged} unchanged, "
            f"{report.skipped} skipped, {report.removed} removed, "
            f"{report.passages} passages indexed."))

    @secrets.command(name="refresh", description="Reload secrets from Secret Manager")
    async def secrets_refresh(self, interaction: discord.Interaction[Any]) -> None:
        secrets = self.bot.secrets
        if secrets is None or not secrets.references:
            await interaction.response.send_message(
                "No setting refers to Secret Manager (gsm:NAME), so there is nothing to "
                "refresh.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        problems = await secrets.refresh_now()  # names and reasons only, never a value
        await self._audit(interaction, "owner.secrets.refresh", failed=len(problems))
        read = len(secrets.references) - len(problems)
        text = f"Re-read {read} of {len(secrets.references)} secrets from Secret Manager."
        if problems:
            text += "\n" + safe_code_block("\n".join(problems))
        await interaction.followup.send(text, ephemeral=True)

    @app_commands.command(name="reload", description="Reload one cog")
    @app_commands.describe(cog="The cog to reload")
    async def reload(self, interaction: discord.Interaction[Any], cog: str) -> None:
        extension = f"cogs.{cog}"
        if extension not in EXTENSIONS:
            await interaction.response.send_message(
                f"Unknown cog. Choose one of: {', '.join(name[5:] for name in EXTENSIONS)}.",
                ephemeral=True)
            return
        try:
            await self.bot.reload_extension(extension)
        except commands.ExtensionError as exc:
            # The owner asked for this reload: show what broke (sanitized), the old cog stays.
            cause = exc.__cause__ or exc
            await self._audit(interaction, "owner.reload.failed", cog=cog)
            await interaction.response.send_message(
                f"Reload of `{cog}` failed; the previous version stays loaded.\n"
                + safe_code_block(f"{type(cause).__name__}: {cause}"), ephemeral=True)
            return
        await self._audit(interaction, "owner.reload", cog=cog)
        await interaction.response.send_message(f"Reloaded `{cog}`.", ephemeral=True)

    @reload.autocomplete("cog")
    async def reload_choices(self, interaction: discord.Interaction[Any],
                             current: str) -> list[app_commands.Choice[str]]:
        names = [name[5:] for name in EXTENSIONS if current.lower() in name]
        return [app_commands.Choice(name=name, value=name) for name in names[:25]]

    @app_commands.command(name="sync", description="Publish the slash commands to Discord")
    @app_commands.describe(here="Copy the global commands to this server only (instant, for "
                                "testing) instead of publishing them everywhere")
    async def sync(self, interaction: discord.Interaction[Any], here: bool = False) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild = interaction.guild if here else None
        if here and guild is None:
            await interaction.followup.send("`here` works only in a server.", ephemeral=True)
            return
        if guild is not None:
            self.bot.tree.copy_global_to(guild=guild)
        synced = await self.bot.tree.sync(guild=guild)
        await self._audit(interaction, "owner.sync", commands=len(synced),
                          scope="guild" if guild is not None else "global")
        where = "to this server" if guild is not None else "globally"
        await interaction.followup.send(f"Synced {len(synced)} commands {where}.",
                                        ephemeral=True)


async def setup(bot: CommunityBot) -> None:
    await bot.add_cog(Owner(bot))
