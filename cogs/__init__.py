"""Slash-command cogs, one per file; `EXTENSIONS` is the list the bot loads (and /reload knows)."""

EXTENSIONS: tuple[str, ...] = ("cogs.general", "cogs.knowledge", "cogs.account", "cogs.admin",
                               "cogs.owner")
