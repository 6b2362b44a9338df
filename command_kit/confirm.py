"""A Confirm / Cancel prompt that only the person who asked can answer, and that expires."""

from __future__ import annotations

from typing import Any

import discord

CONFIRM_TIMEOUT_SECONDS = 60.0


class ConfirmView(discord.ui.View):
    """`await view.wait()`; then `view.confirmed` is True, False (cancelled) or None (expired)."""

    def __init__(self, owner_id: int, *, timeout: float = CONFIRM_TIMEOUT_SECONDS) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.confirmed: bool | None = None
        self.answer: discord.Interaction[Any] | None = None

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the person who ran the command can answer this.", ephemeral=True)
            return False
        return True

    async def _finish(self, interaction: discord.Interaction[Any], confirmed: bool) -> None:
        self.confirmed = confirmed
        self.answer = interaction
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        self.stop()

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger, custom_id="confirm")
    async def confirm(self, interaction: discord.Interaction[Any],
                      button: discord.ui.Button[ConfirmView]) -> None:
        await self._finish(interaction, True)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="cancel")
    async def cancel(self, interaction: discord.Interaction[Any],
                     button: discord.ui.Button[ConfirmView]) -> None:
        await self._finish(interaction, False)
