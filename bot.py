"""Entry point: the Discord bot and the control API on one event loop, plus admin commands.

    python bot.py [run]                                   migrate, start the API, start the bot
    python bot.py migrate {upgrade,downgrade,current,history} [revision] [--yes]
    python bot.py apikey {create,list,revoke}             scoped API keys
    python bot.py check-config                            list every configuration problem
    python bot.py sync [--guild ID]                       publish the slash commands
    python bot.py invite                                  print the invite URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import signal
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
import yarl
from aiohttp import web
from discord.ext import commands

import api
from cli import commands as commands_cli
from cogs import EXTENSIONS
from command_kit import sync as command_sync
from command_kit.access import holds_admin
from command_kit.errors import on_app_command_error, on_prefix_command_error
from delivery.discord_delivery import deliver
from delivery.outbox_worker import OutboxWorker
from edge.server import EdgeAppRunner, EdgeLimits
from knowledge.service import KnowledgeBase
from members.premium import PremiumInvalidator
from observability.command_stats import CommandStats
from store import migrate
from store.connect_errors import DatabaseUnreachableError
from store.database import Database
from utils.config import ConfigError, Settings, load_settings
from utils.logging import configure_logging, get_logger
from utils.secret_manager import SecretManager
from utils.secret_values import SecretValues

log = get_logger("bot")

SHUTDOWN_GRACE_SECONDS = 6.0
# A longer Retry-After raises discord.RateLimited instead of sleeping (by default discord.py
# sleeps however long Discord asks); 30 s is the least discord.py accepts. The outbox bounds
# each send more tightly still (delivery/outbox_worker.py).
MAX_RATELIMIT_WAIT_SECONDS = 30.0
EXIT_CONFIG_ERROR = 2


def _shard_options(settings: Settings) -> dict[str, Any]:
    """SHARD_COUNT/SHARD_IDS run a range of shards here; unset, discord.py picks the count."""
    options: dict[str, Any] = {}
    if settings.shard_count is not None:
        options["shard_count"] = settings.shard_count
    if settings.shard_ids is not None:
        options["shard_ids"] = list(settings.shard_ids)
    return options


class CommunityBot(commands.AutoShardedBot):
    """The bot, with the settings and database it was built with."""

    def __init__(self, settings: Settings, database: Database,
                 premium: PremiumInvalidator | None = None,
                 command_stats: CommandStats | None = None,
                 knowledge: KnowledgeBase | None = None,
                 secrets: SecretValues | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_SECONDS,
            **_shard_options(settings),
        )
        self.settings = settings
        self.database = database
        self.premium = premium if premium is not None else PremiumInvalidator()
        self.command_stats = command_stats if command_stats is not None else CommandStats()
        self._owns_knowledge = knowledge is None
        self.knowledge = knowledge if knowledge is not None \
            else KnowledgeBase.open(settings, database)
        self.secrets = secrets  # None: no Secret Manager references to refresh
        self._gateway_started = False
        self._invite_logged = False
        self.auto_sync = True  # `python bot.py sync` turns it off and syncs itself
        self.tree.on_error = on_app_command_error  # type: ignore[method-assign]
        self.outbox = OutboxWorker(database, functools.partial(deliver, self),
                                   is_connected=self.is_ready)

    async def connect(self, *, reconnect: bool = True) -> None:
        self._gateway_started = True
        await super().connect(reconnect=reconnect)

    async def close(self) -> None:
        await self.outbox.stop()
        if self._owns_knowledge:
            await self.knowledge.close()
        if not self._gateway_started:
            # AutoShardedClient.close() needs the event queue that connect() creates; before
            # that (offline in tests, or a failed login) only the HTTP session is open.
            await self.http.close()
            return
        await super().close()

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # A fresh install or a changed command tree: publish it once (when logged in).
        if self.auto_sync and self.application_id is not None:
            await command_sync.sync_if_changed(self.tree, self.database)
        self.outbox.start()

    async def on_command_error(self, context: commands.Context[Any],
                               error: commands.CommandError) -> None:
        await on_prefix_command_error(context, error)

    async def on_app_command_completion(self, interaction: discord.Interaction[Any],
                                        command: Any) -> None:
        self.command_stats.record(command.qualified_name, failed=False)

    async def is_guild_admin(self, discord_user_id: int, guild_id: int) -> bool:
        """For the control API: does this member administer this guild (as /config requires)?"""
        if discord_user_id in self.settings.owner_ids:
            return True
        guild = self.get_guild(guild_id)
        if guild is None:
            return False
        member = guild.get_member(discord_user_id)
        if member is None:
            try:
                member = await guild.fetch_member(discord_user_id)
            except (discord.NotFound, discord.Forbidden):
                return False
        return holds_admin(self.settings, discord_user_id, (role.id for role in member.roles),
                           member.guild_permissions.administrator)

    async def on_ready(self) -> None:
        log.info("discord gateway ready", guilds=len(self.guilds))
        if not self._invite_logged and self.application_id is not None:
            self._invite_logged = True
            log.info("invite the bot with", url=command_sync.invite_url(self.application_id))
        self.outbox.wake()  # deliver what queued up while we were away


def create_bot(settings: Settings, *, database: Database,
               premium: PremiumInvalidator | None = None,
               command_stats: CommandStats | None = None,
               knowledge: KnowledgeBase | None = None,
               secrets: SecretValues | None = None) -> CommunityBot:
    """Build the bot without connecting, so tests can drive the same object production runs."""
    # The bot uses no voice: discord.py's warnings about missing voice libraries are noise.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    if settings.discord_api_base:
        # discord.py sends every REST call to Route.BASE: a REST proxy or a local stand-in.
        discord.http.Route.BASE = settings.discord_api_base
    bot = CommunityBot(settings, database, premium, command_stats, knowledge, secrets)
    if settings.discord_gateway_url:
        _use_gateway(bot, settings.discord_gateway_url)
    return bot


def _use_gateway(bot: CommunityBot, url: str) -> None:
    """Open the gateway at `url` (a gateway proxy) instead of where Discord says."""
    gateway = yarl.URL(url)
    # With SHARD_COUNT set discord.py skips GET /gateway/bot and uses this default.
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
    ask_discord = bot.http.get_bot_gateway

    async def get_bot_gateway() -> tuple[int, str, Any]:
        shards, _, limits = await ask_discord()
        return shards, str(gateway), limits

    bot.http.get_bot_gateway = get_bot_gateway  # type: ignore[method-assign]


def _install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a part fails (exit 1)."""
    log.info("migrating database to head", backend=settings.database_url.split(":", 1)[0])
    try:
        await migrate.upgrade_async(settings.database_url)
    except DatabaseUnreachableError as exc:  # the cause in one line; a traceback would bury it
        log.error("cannot reach the database: not starting", cause=str(exc))
        return 1
    except Exception:
        log.exception("database migration failed: not starting")
        return 1

    resolved = await _resolve_secrets(settings)  # read before anything listens
    if resolved is None:
        return EXIT_CONFIG_ERROR
    secret_manager, secrets = resolved
    secrets.start()  # re-read each reference when its TTL runs out: rotation without restart

    database = Database(settings.database_url)
    knowledge = KnowledgeBase.open(settings, database, secret_manager=secret_manager,
                                   secrets=secrets)
    premium = PremiumInvalidator()  # one cache: the webhook invalidates what /premium reads
    command_stats = CommandStats()  # the bot counts, the API reports
    token = secrets.value("DISCORD_TOKEN")
    bot = create_bot(settings, database=database, premium=premium, command_stats=command_stats,
                     knowledge=knowledge, secrets=secrets) if token else None
    if bot is None:
        log.warning("DISCORD_TOKEN is not set: the Discord bot stays off; the API still serves")
    if not settings.auth_configured:
        log.warning("NO AUTHENTICATION: none of API_KEY, SUPABASE_URL or SUPABASE_JWT_SECRET "
                    "is set; /api/v1 is open to anyone who can reach it (the operator "
                    "endpoints /metrics, /api/observability and /status need API_KEY and "
                    "answer 503). Development only.")

    try:
        app = api.create_app(settings, database=database, gateway=bot, premium=premium,
                             command_stats=command_stats, secrets=secrets, knowledge=knowledge)
    except ConfigError as exc:  # a setting read only now, such as a resolved REDIS_URL
        for problem in exc.problems:
            log.error("configuration problem: not starting", problem=problem)
        if bot is not None:
            await bot.close()
        await _close_shared(secrets, knowledge, secret_manager, database)
        return EXIT_CONFIG_ERROR
    # EdgeAppRunner: JSON answers for aiohttp's own refusals, header/body/keep-alive deadlines
    # and the per-address connection cap (edge/server.py).
    runner = EdgeAppRunner(app, limits=EdgeLimits.from_settings(settings), access_log=None,
                           shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.api_host, settings.api_port).start()
    except OSError as exc:
        log.error("the API cannot listen", host=settings.api_host, port=settings.api_port,
                  error=exc.strerror or type(exc).__name__)
        await runner.cleanup()
        await _close_shared(secrets, knowledge, secret_manager, database)
        return 1
    for address in runner.addresses:
        log.info("api listening", address=str(address))
    # Everything built so far lives as long as the process: keep it out of the collector's
    # scans, which otherwise pause the loop for tens of milliseconds now and then.
    gc.freeze()
    knowledge.start()  # the scheduled Drive sync, when a folder is configured

    stop = asyncio.Event()
    _install_stop_signals(stop)
    waiting: set[asyncio.Task[Any]] = {asyncio.create_task(stop.wait(), name="stop-signal")}
    bot_task: asyncio.Task[None] | None = None
    if bot is not None and token is not None:
        bot_task = asyncio.create_task(bot.start(token), name="discord-bot")
        waiting.add(bot_task)

    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    if bot_task is not None and bot_task in done:
        failure = bot_task.exception()
        if isinstance(failure, discord.LoginFailure):
            log.error("Discord refused DISCORD_TOKEN: check the bot token in the developer "
                      "portal (Bot > Reset Token) and set it again")
        else:
            # What stopped it, said (a host that cannot be reached, a refused connection):
            # the record's masking keeps the token out whatever the text holds.
            log.error("the Discord bot stopped",
                      error_type=type(failure).__name__ if failure else None,
                      error=str(failure)[:300] if failure else None)
        exit_code = 1
    else:
        log.info("stop signal received: shutting down")

    # Stop accepting, let in-flight requests finish (bounded), then close gateway and database.
    await runner.cleanup()
    if bot is not None:
        await bot.close()
    for task in waiting:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await _close_shared(secrets, knowledge, secret_manager, database)
    log.info("stopped", exit_code=exit_code)
    return exit_code


async def _resolve_secrets(settings: Settings) -> tuple[SecretManager | None, SecretValues] | None:
    """Read every `gsm:` reference: how each command that uses a secret gets its value.

    Each unreadable reference is logged by name; None when production refuses to go on.
    """
    manager = SecretManager.from_settings(settings)
    secrets = SecretValues(settings, manager)
    problems = await secrets.resolve_all()
    for problem in problems:
        log.error("secret unavailable", problem=problem)
    if problems and settings.is_production:
        log.error("production refuses to start with an unreadable secret reference")
        if manager is not None:
            await manager.close()
        return None
    return manager, secrets


async def _close_shared(secrets: SecretValues, knowledge: KnowledgeBase,
                        secret_manager: SecretManager | None, database: Database) -> None:
    """What the bot and the API share, closed once both have stopped."""
    await secrets.stop()
    await knowledge.close()
    if secret_manager is not None:
        await secret_manager.close()
    await database.dispose()


async def _run_discord_command(settings: Settings, args: argparse.Namespace) -> int:
    """`sync` and `invite`: log in over REST only (no gateway), act, log out."""
    if settings.discord_token is None:
        print("DISCORD_TOKEN is not set.", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    resolved = await _resolve_secrets(settings)
    if resolved is None:
        return EXIT_CONFIG_ERROR
    manager, secrets = resolved
    try:
        token = secrets.value("DISCORD_TOKEN")
        if token is None:  # an unreadable reference, logged above
            return EXIT_CONFIG_ERROR
        return await _discord_command(settings, args, token, secrets)
    finally:
        if manager is not None:
            await manager.close()


async def _discord_command(settings: Settings, args: argparse.Namespace, token: str,
                           secrets: SecretValues) -> int:
    await migrate.upgrade_async(settings.database_url)
    database = Database(settings.database_url)
    client = create_bot(settings, database=database, secrets=secrets)
    client.auto_sync = False
    try:
        await client.login(token)
        assert client.application_id is not None  # set by login
        if args.command == "invite":
            print(command_sync.invite_url(client.application_id))
        elif args.guild is not None:
            count = await command_sync.sync_to_guild(client.tree, args.guild)
            print(f"synced {count} commands to guild {args.guild} (visible there at once)")
        else:
            count = await command_sync.sync_globally(client.tree, client.database)
            print(f"synced {count} commands globally (Discord may take a few minutes)")
    except discord.LoginFailure:
        print("Discord refused DISCORD_TOKEN: check the bot token.", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, TimeoutError) as exc:  # no route, refused, TLS, timed out
        print(f"cannot reach Discord at {discord.http.Route.BASE}: "
              f"{str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        await client.close()
        await database.dispose()
    return 0


async def _unreadable_references(settings: Settings) -> list[str]:
    """Read every `gsm:` reference once; one problem per reference that cannot be read."""
    manager = SecretManager.from_settings(settings)
    try:
        return await SecretValues(settings, manager).resolve_all()
    finally:
        if manager is not None:
            await manager.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="migrate, then run the API and the bot (the default)")
    sub.add_parser("check-config", help="validate settings; non-zero exit lists every problem")
    migrate_parser = sub.add_parser("migrate", help="Alembic without the bot")
    migrate_parser.add_argument("action", choices=["upgrade", "downgrade", "current", "history"])
    migrate_parser.add_argument("revision", nargs="?", default=None)
    migrate_parser.add_argument("--yes", action="store_true", help="confirm a downgrade")
    sync_parser = sub.add_parser("sync", help="publish the slash commands to Discord")
    sync_parser.add_argument("--guild", type=int, help="only this guild, visible at once")
    sub.add_parser("invite", help="print the URL that adds the bot to a server")
    key_parser = sub.add_parser("apikey", help="scoped API keys")
    key_sub = key_parser.add_subparsers(dest="action", required=True)
    create = key_sub.add_parser("create", help="make a key; it is printed once")
    create.add_argument("--name", default="api key")
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. drive:sync")
    create.add_argument("--expires", help="lifetime such as 30d, 12h, 2w (default: never)")
    key_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = key_sub.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if command == "check-config":
        problems = asyncio.run(_unreadable_references(settings))
        if problems:
            print(str(ConfigError(problems)), file=sys.stderr)
            return EXIT_CONFIG_ERROR
        print("configuration is valid")
        return 0
    configure_logging(log_format=settings.effective_log_format, level=settings.log_level,
                      secrets=settings.secret_values())
    try:
        if command == "migrate":
            return commands_cli.run_migrate(settings, args)
        if command in ("sync", "invite"):
            return asyncio.run(_run_discord_command(settings, args))
        if command == "apikey":
            return asyncio.run(commands_cli.run_apikey(settings, args))
    except DatabaseUnreachableError as exc:
        print(f"cannot reach the database: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
