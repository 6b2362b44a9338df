"""Sends an outbox entry through discord.py: a DM to a user or a post in a channel.

Every message goes out with `AllowedMentions.none()` and a nonce derived from the entry, which
Discord enforces for a few minutes, so a retry after a crash between "sent" and "marked sent"
does not post twice.
"""

from __future__ import annotations

from typing import Any

import discord

from delivery.outbox_worker import PermanentDeliveryError, RetryLaterError
from store.models import OutboxMessage


def outbox_nonce(entry: OutboxMessage) -> str:
    return f"outbox-{entry.id}"[:25]  # Discord caps nonces at 25 characters


async def _destination(client: discord.Client, entry: OutboxMessage) -> discord.abc.Messageable:
    if entry.kind == "dm":
        return client.get_user(entry.target_id) or await client.fetch_user(entry.target_id)
    if entry.kind == "channel_message":
        channel: Any = client.get_channel(entry.target_id) \
            or await client.fetch_channel(entry.target_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise PermanentDeliveryError("target is not a text channel")
        return channel
    raise PermanentDeliveryError(f"unknown outbox kind {entry.kind!r}")


async def deliver(client: discord.Client, entry: OutboxMessage) -> None:
    try:
        destination = await _destination(client, entry)
        options: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none(),
                                   "nonce": outbox_nonce(entry)}
        if "embed" in entry.payload:
            options["embed"] = discord.Embed.from_dict(entry.payload["embed"])
        await destination.send(entry.payload.get("content"), **options)
    except (discord.Forbidden, discord.NotFound) as exc:
        raise PermanentDeliveryError(f"discord refused: {exc.status} {exc.code}") from exc
    except discord.RateLimited as exc:  # raised past the client's max_ratelimit_timeout
        raise RetryLaterError(exc.retry_after) from exc
