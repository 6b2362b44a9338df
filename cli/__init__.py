"""`python bot.py` subcommands that run without the bot: migrate, apikey."""
