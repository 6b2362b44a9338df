"""Slash commands appear on a fresh install without anyone typing a command Discord does not
know yet: the bot publishes its command tree when it changed, `python bot.py sync` does it on
demand, and `python bot.py invite` prints the link that adds the bot with what it needs."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

import bot
from harness.google_standins import GoogleStandIn
from harness.process import BOT, base_env, free_port, start_bot, wait_until_ready
from store.database import Database
from tests.support.discord_support import running_bot
from tests.support.fake_discord import APPLICATION_ID, FakeDiscord
from utils.config import Settings

GUILD = 1 << 22 | 17
TOKEN = "MTIz.fake.token-for-command-sync-tests-xyz"
GLOBAL_SYNC = rf"/applications/{APPLICATION_ID}/commands"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild(GUILD)
    await server.start()
    yield server
    await server.stop()


def discord_env(fake: FakeDiscord, workdir: Path, port: int = 0) -> dict[str, str]:
    return base_env(workdir, port, DISCORD_TOKEN=TOKEN, DISCORD_API_BASE=fake.api_base,
                    DISCORD_GATEWAY_URL=fake.gateway_url)


async def run_until_ready_then_stop(fake: FakeDiscord, workdir: Path) -> str:
    port = free_port()
    process = start_bot(workdir, discord_env(fake, workdir, port))
    try:
        await asyncio.to_thread(wait_until_ready, port, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    return stderr


async def test_a_fresh_install_syncs_once_and_an_unchanged_restart_does_not(
        fake: FakeDiscord, tmp_path: Path, make_settings: Callable[..., Settings],
        monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = await run_until_ready_then_stop(fake, tmp_path)
    (published,) = fake.sent("PUT", GLOBAL_SYNC)
    assert {command["name"] for command in published.body} >= {"ping", "learn", "sync"}
    assert "slash commands published" in stderr
    assert f"client_id={APPLICATION_ID}" in stderr  # the invite link, logged at connect

    await run_until_ready_then_stop(fake, tmp_path)
    assert len(fake.sent("PUT", GLOBAL_SYNC)) == 1, "an unchanged restart makes no sync call"

    # An upgrade adds a command: the next start publishes the tree again.
    monkeypatch.setattr(bot, "EXTENSIONS", (*bot.EXTENSIONS, "tests.support.extra_cog"))
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        async with running_bot(fake, make_settings(), database):
            pass
    finally:
        await database.dispose()
    assert len(fake.sent("PUT", GLOBAL_SYNC)) == 2
    assert "extra" in {command["name"] for command in fake.sent("PUT", GLOBAL_SYNC)[-1].body}


def run_cli(fake: FakeDiscord, workdir: Path, *args: str,
            **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, BOT, *args], cwd=workdir,
                          env=discord_env(fake, workdir) | env, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_cli_sync_to_one_guild_and_globally(fake: FakeDiscord, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_cli, fake, tmp_path, "sync", "--guild", str(GUILD))
    assert result.returncode == 0, result.stderr
    assert f"to guild {GUILD}" in result.stdout
    (to_guild,) = fake.sent("PUT", rf"/applications/{APPLICATION_ID}/guilds/{GUILD}/commands")
    assert "ping" in {command["name"] for command in to_guild.body}
    assert not fake.sent("PUT", GLOBAL_SYNC), "a guild sync publishes nothing globally"

    result = await asyncio.to_thread(run_cli, fake, tmp_path, "sync")
    assert result.returncode == 0, result.stderr
    assert len(fake.sent("PUT", GLOBAL_SYNC)) == 1
    assert TOKEN not in result.stdout + result.stderr


async def test_invite_prints_the_scopes_and_the_permissions_the_commands_need(
        fake: FakeDiscord, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_cli, fake, tmp_path, "invite")
    assert result.returncode == 0, result.stderr
    query = parse_qs(urlparse(result.stdout.strip()).query)
    assert query["client_id"] == [str(APPLICATION_ID)]
    assert query["scope"] == ["bot applications.commands"]
    # View Channels (1024) + Send Messages (2048) + Embed Links (16384), as docs/ explains.
    assert query["permissions"] == ["19456"]


async def test_sync_and_invite_log_in_with_a_token_from_secret_manager(
        fake: FakeDiscord, google: GoogleStandIn, tmp_path: Path) -> None:
    google.set_secret("discord-token", TOKEN)
    from_secret_manager = {"DISCORD_TOKEN": "gsm:discord-token",
                           "GOOGLE_PROJECT_ID": google.key.project_id,
                           "GOOGLE_CREDENTIALS_JSON": google.key_json(),
                           "SECRET_MANAGER_API_ENDPOINT": google.url}
    for command in (["sync", "--guild", str(GUILD)], ["invite"]):
        result = await asyncio.to_thread(run_cli, fake, tmp_path, *command, **from_secret_manager)
        assert result.returncode == 0, result.stderr
        assert TOKEN not in result.stdout + result.stderr
    assert fake.requests
    assert {request.token for request in fake.requests} == {f"Bot {TOKEN}"}

    google.denied_secrets.add("discord-token")
    result = await asyncio.to_thread(run_cli, fake, tmp_path, "invite", **from_secret_manager)
    assert result.returncode == 2
    assert "DISCORD_TOKEN: secret 'discord-token' could not be read" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_rejected_token_names_discord_token(fake: FakeDiscord, tmp_path: Path) -> None:
    fake.fail(r"/users/@me", 401)
    port = free_port()
    process = start_bot(tmp_path, discord_env(fake, tmp_path, port))
    _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 1
    assert "Discord refused DISCORD_TOKEN" in stderr
    assert TOKEN not in stderr


@pytest.mark.parametrize("command", [["invite"], ["sync"], ["sync", "--guild", str(GUILD)]])
def test_cli_with_discord_unreachable_prints_one_line(tmp_path: Path, command: list[str]) -> None:
    dead = free_port()
    env = base_env(tmp_path, 0, DISCORD_TOKEN=TOKEN,
                   DISCORD_API_BASE=f"http://127.0.0.1:{dead}/api/v10")
    result = subprocess.run([sys.executable, BOT, *command], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert all(entry["level"] == "info" for entry in logged), logged  # discord.py's "logging in"
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert line.startswith("cannot reach Discord at http://127.0.0.1:"), line
    assert f"127.0.0.1:{dead}" in line
    assert TOKEN not in result.stderr


async def test_the_rejected_token_log_in_the_docs_is_what_the_bot_prints(
        fake: FakeDiscord, tmp_path: Path) -> None:
    """docs/discord-setup.md shows the console log of a rejected token: it must be the real one
    (timestamps aside)."""
    text = (Path(BOT).parent / "docs" / "discord-setup.md").read_text(encoding="utf-8")
    section = text[text.index("**A rejected token.**"):]
    start = section.index("```\n") + 4
    shown = section[start:section.index("\n```", start)].splitlines()
    assert len(shown) == 3
    fake.fail(r"/users/@me", 401)
    env = {**discord_env(fake, tmp_path, free_port()), "LOG_FORMAT": "console"}
    process = start_bot(tmp_path, env)
    _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 1
    printed = [" ".join(line.split()[1:]) for line in stderr.splitlines()]  # no timestamp
    for line in shown:
        assert " ".join(line.split()) in printed, line
