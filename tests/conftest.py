"""Shared fixtures: settings without `.env`, and real SQLite and PostgreSQL databases.

Layout: tests/unit (pure logic), tests/integration (the app, real PostgreSQL and Redis),
tests/e2e (the real process, the real discord.py client against tests/support/fake_discord.py);
tests/support holds the loopback stand-ins.

With REQUIRE_SERVICES=1 (CI) a missing PostgreSQL or Redis fails the tests that need it;
otherwise those tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from sqlalchemy import text

from harness.google_standins import GoogleStandIn
from store import migrate
from store.database import Database
from store.models import Base, DiscordLink, User
from tests.support.jwks_server import FakeSupabase, SigningKey
from tests.support.network_guard import NetworkGuard
from utils.config import Settings

POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SERVICES_REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"


_LAYER_MARKERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder (tests/unit, tests/integration, tests/e2e), so that
    `pytest -m "not e2e"` is the quick run and `-m unit` the pure one."""
    for item in items:
        parts = item.path.parts
        for layer in _LAYER_MARKERS:
            if layer in parts:
                item.add_marker(layer)


def service_missing(what: str, error: BaseException) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if SERVICES_REQUIRED:
        pytest.fail(f"{message}; REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Settings from keyword overrides only: the developer's `.env` never leaks into tests."""

    def build(**overrides: Any) -> Settings:
        return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]

    return build


def _postgres_admin(statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def _temporary_postgres_database(prefix: str) -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        _postgres_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", exc)
    base = POSTGRES_ADMIN_DSN.rpartition("/")[0].split("://", 1)[1]
    yield f"postgresql+asyncpg://{base}/{name}"
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for this test session, migrated to head."""
    for url in _temporary_postgres_database("bot_test"):
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _empty_postgres(database: Database) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with database.engine.begin() as connection:
        # Triggers keep the audit log append-only; a superuser session may bypass them.
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "bot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    if db.backend == "postgresql":
        await _empty_postgres(db)
    yield db
    await db.dispose()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database with no schema at all (for migration tests)."""
    yield from _temporary_postgres_database("bot_mig")


@pytest.fixture
async def supabase() -> AsyncIterator[FakeSupabase]:
    """A loopback Supabase serving a JWKS with an ES256 and an RS256 key."""
    server = FakeSupabase()
    server.keys = [SigningKey("ES256"), SigningKey("RS256")]
    await server.start()
    yield server
    await server.stop()


async def link_discord(database: Database, user_id: str, discord_user_id: int) -> None:
    """A user with a verified Discord link, as the auth webhook would create."""
    async with database.transaction() as session:
        session.add(User(id=user_id))
        await session.flush()
        session.add(DiscordLink(discord_user_id=discord_user_id, user_id=user_id))


@contextlib.asynccontextmanager
async def empty_redis() -> AsyncIterator[redis_asyncio.Redis]:
    """A client of the local Redis (database 15), flushed before and after use."""
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    except (OSError, redis_asyncio.RedisError) as exc:
        await client.aclose()
        service_missing("Redis", exc)
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The URL of the local Redis (database 15), flushed before and after each test."""
    async with empty_redis():
        yield REDIS_URL


@pytest.fixture
def network_guard() -> Iterator[NetworkGuard]:
    """Fails the test if this process connects anywhere but 127.0.0.1 (Google's clients try)."""
    guard = NetworkGuard()
    with guard.active():
        yield guard
    guard.assert_clean()


@pytest.fixture
def google_page_size() -> int:
    """Drive listing page size of the stand-in (a module may override it)."""
    return 3


@pytest.fixture
async def google(network_guard: NetworkGuard,
                 google_page_size: int) -> AsyncIterator[GoogleStandIn]:
    """The loopback Google: OAuth token endpoint, Drive v3 and Secret Manager."""
    standin = GoogleStandIn(page_size=google_page_size)
    await standin.start()
    yield standin
    await standin.stop()
