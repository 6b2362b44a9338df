"""Migrations are the only source of the schema, and they run from every entry point."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from store import migrate
from store.database import Database
from store.models import Base, include_in_schema_comparison

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


async def schema_differences(url: str) -> list[object]:
    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"include_name": include_in_schema_comparison})
        return list(compare_metadata(context, Base.metadata))

    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await database.dispose()


async def table_names(url: str) -> set[str]:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await database.dispose()


def test_upgrade_downgrade_upgrade_and_models_match(empty_database_url: str) -> None:
    url = empty_database_url
    migrate.upgrade(url)
    assert migrate.current(url).startswith(migrate.head_revision() or "?")
    assert asyncio.run(schema_differences(url)) == []

    migrate.downgrade(url, "base")
    assert asyncio.run(table_names(url)) <= {"alembic_version"}

    migrate.upgrade(url)
    assert asyncio.run(schema_differences(url)) == []
    assert {table.name for table in Base.metadata.sorted_tables} <= asyncio.run(table_names(url))


async def test_async_upgrade_from_inside_the_running_loop(empty_database_url: str) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    output = await migrate.upgrade_async(empty_database_url)
    ticker.cancel()
    assert "Running upgrade" in output
    assert ticks > 0, "the loop kept running while the migration ran in a worker thread"
    assert await migrate.current_async(empty_database_url) != "(no revision: empty database)"


async def test_alembic_called_synchronously_inside_a_loop_still_works(tmp_path: Path) -> None:
    # The known trap: env.py's asyncio.run would raise "cannot be called from a running loop".
    url = f"sqlite+aiosqlite:///{tmp_path / 'sync-in-loop.db'}"
    command.upgrade(migrate.alembic_config(url), "head")
    assert await schema_differences(url) == []


def test_alembic_cli_uses_database_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(PROJECT_ROOT / "alembic.ini"), "upgrade",
         "head"],
        cwd=tmp_path, env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert asyncio.run(schema_differences(url)) == []


def test_bot_migrate_subcommands(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> str:
        result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bot.py"), "migrate", *args],
                                cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "empty database" in run("current")
    assert "Running upgrade" in run("upgrade")
    assert "(head)" in run("current")
    assert "(head)" in run("history")
    upgraded = run("upgrade")  # already at head: said once, not once per log handler too
    assert upgraded.count("already at the requested revision") == 1
    refused = subprocess.run([sys.executable, str(PROJECT_ROOT / "bot.py"), "migrate",
                              "downgrade", "base"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert refused.returncode == 1
    assert "pass --yes" in refused.stderr
    assert "(head)" in run("current"), "a refused downgrade changes nothing"
    downgraded = run("downgrade", "base", "--yes")
    assert "Running downgrade" in downgraded
    assert len(downgraded.splitlines()) == len(set(downgraded.splitlines())), "each line once"
    assert "empty database" in run("current")
