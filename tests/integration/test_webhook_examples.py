"""The signing examples of docs/webhooks.md, run as a reader would run them, against the app."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import api
from store.database import Database
from store.models import Reflection
from tests.support.doc_support import doc, marked_blocks
from utils.config import Settings

ClientFactory = Callable[..., Any]
EXAMPLES = marked_blocks(doc("webhooks.md"))
SHELL_TOOLS = ("sh", "openssl", "curl", "od", "base64", "tr", "sed", "date")
needs_shell_tools = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in SHELL_TOOLS),
    reason=f"the shell examples need {', '.join(SHELL_TOOLS)}")


def standard_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def raw_secret() -> str:
    return secrets.token_urlsafe(32)


def repeating_secret() -> str:
    """A key whose bytes repeat: `od` would fold its repeated lines into `*` without `-v`."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(16) * 2).decode()


@pytest.fixture
async def database(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database (the examples need no other service)."""
    path = tmp_path / "bot.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    yield db
    await db.dispose()


async def serve(aiohttp_client: ClientFactory, settings: Settings, database: Database,
                path: str) -> str:
    client = await aiohttp_client(api.create_app(settings, database=database))
    return str(client.make_url(path))


async def run(argv: list[str], url: str, secret: str, stdin: bytes | None = None,
              ) -> tuple[int, str]:
    """Run an example with only what its reader sets: the URL, the secret and PATH."""
    environment = {"WEBHOOK_URL": url, "WEBHOOK_SECRET": secret,
                   "PATH": os.environ.get("PATH", "")}
    process = await asyncio.create_subprocess_exec(
        *argv, env=environment, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode if process.returncode is not None else -1, output.decode()


def test_the_examples_are_marked() -> None:
    assert set(EXAMPLES) == {"sign-python", "sign-shell", "sign-body-only"}


@pytest.mark.parametrize("make_secret", [standard_secret, raw_secret])
async def test_python_example_gets_200_and_the_effect_happens(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database, make_secret: Callable[[], str]) -> None:
    secret = make_secret()
    url = await serve(aiohttp_client, make_settings(app_reflections_webhook_secret=secret),
                      database, "/webhooks/reflections")
    # -I -S: isolated and without site-packages, so the example can only use the stdlib.
    status, output = await run([sys.executable, "-I", "-S", "-c", EXAMPLES["sign-python"]],
                               url, secret)
    assert status == 0, output
    code, _, body = output.strip().partition(" ")
    assert code == "200"
    assert json.loads(body) == {"status": "processed", "action": "upserted"}
    async with database.session() as session:
        stored = await session.scalar(select(Reflection).where(Reflection.external_id == "r-42"))
    assert stored is not None
    assert stored.user_id == "user-1"


async def test_python_example_reports_a_wrong_secret(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database) -> None:
    url = await serve(aiohttp_client, make_settings(
        app_reflections_webhook_secret=standard_secret()), database, "/webhooks/reflections")
    status, output = await run([sys.executable, "-I", "-S", "-c", EXAMPLES["sign-python"]],
                               url, standard_secret())
    assert status == 1, output
    assert output.startswith("401 "), output


@needs_shell_tools
@pytest.mark.parametrize("make_secret", [standard_secret, raw_secret, repeating_secret])
async def test_shell_example_gets_200(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database, make_secret: Callable[[], str]) -> None:
    secret = make_secret()
    url = await serve(aiohttp_client, make_settings(app_reflections_webhook_secret=secret),
                      database, "/webhooks/reflections")
    status, output = await run(["sh", "-s"], url, secret, EXAMPLES["sign-shell"].encode())
    assert status == 0, output
    assert json.loads(output) == {"status": "processed", "action": "upserted"}


@needs_shell_tools
async def test_body_only_example_gets_200_when_allowed(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database) -> None:
    secret = raw_secret()
    url = await serve(aiohttp_client, make_settings(
        legal_update_webhook_secret=secret, webhook_allow_body_only_signatures=True),
        database, "/webhooks/legal-update")
    status, output = await run(["sh", "-s"], url, secret, EXAMPLES["sign-body-only"].encode())
    assert status == 0, output
    assert json.loads(output) == {"status": "processed", "queued": 0}
