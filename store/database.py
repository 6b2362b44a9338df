"""The one way to reach the database: an async engine and its session factory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store.driver_pool import DriverPool
from store.statement_batch import StatementBatch
from utils.storable import NUL, UnstorableText, contains_nul

Batch = TypeVar("Batch", bound=StatementBatch[Any, Any])
SQLITE_BUSY_TIMEOUT_MS = 5000
# A dead server must fail fast (readiness, webhooks answering 503), not hang a request.
POSTGRES_CONNECT_ARGS = {"timeout": 5, "command_timeout": 30}
DRIVER_ACQUIRE_SECONDS = 5  # as the engine's pool_timeout: then 503, retry later
_AFTER_COMMIT = "after_commit"


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a file-backed SQLite database (`./data` by default)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Enforce foreign keys (off by default in SQLite) and let readers run beside a writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _refuse_nul_parameters(_connection: Any, _cursor: Any, _statement: str, parameters: Any,
                           _context: Any, _executemany: bool) -> None:
    """No text with a NUL reaches either backend (PostgreSQL cannot store it, SQLite could):
    the same UnstorableText on both, whatever path the text took."""
    # One row (a tuple or a mapping), or several of them (executemany).
    for item in parameters.values() if isinstance(parameters, Mapping) else parameters or ():
        if type(item) is str:
            if NUL in item:
                raise UnstorableText()
        elif isinstance(item, tuple | list | Mapping):
            for value in item.values() if isinstance(item, Mapping) else item:
                if type(value) is str and NUL in value:
                    raise UnstorableText()


def storable_json(value: Any) -> str:
    """JSON columns: a NUL is escaped as \\u0000 by then, so it is looked for before."""
    text = json.dumps(value)
    if "\\u0000" in text and contains_nul(value):
        raise UnstorableText()
    return text


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine with the right defaults for each backend."""
    backend = make_url(url).get_backend_name()
    options.setdefault("json_serializer", storable_json)
    if backend == "sqlite":
        ensure_sqlite_directory(url)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "before_cursor_execute", _refuse_nul_parameters)
        return engine
    if "poolclass" not in options:
        # No pre-ping round trip on every checkout (it was one of seven per webhook delivery):
        # a connection whose socket the server or network closed is known locally, and
        # `_drop_closed` swaps it for a new one; a failure mid-statement is a 503 (retry).
        options.setdefault("pool_pre_ping", False)
        # Connections above pool_size are closed when returned, and opening one costs a DNS
        # lookup in a thread plus the PostgreSQL handshake: size the pool for the concurrency
        # a replica really sees (webhooks, the API and the bot together).
        options.setdefault("pool_size", 20)
        options.setdefault("max_overflow", 20)
        options.setdefault("pool_timeout", 5)
    options.setdefault("connect_args", dict(POSTGRES_CONNECT_ARGS))
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_nul_parameters)
    if not options.get("pool_pre_ping"):
        event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket is closed is replaced before use (no round trip)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise exc.DisconnectionError("connection closed while pooled")


# SQLSTATE classes of asyncpg's own errors (the driver path) that mean "not now": connection
# exceptions, operator intervention (a terminated backend, a shutdown), insufficient resources.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")


def is_unavailable(error: BaseException) -> bool:
    """True when `error` means "the database cannot be reached now" (retry later, 503)."""
    if isinstance(error, OSError | TimeoutError | exc.TimeoutError | exc.OperationalError
                  | exc.InterfaceError):
        return True
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated
    return _driver_unavailable(error)


def _answered_by_server(error: BaseException) -> bool:
    """An asyncpg error the server sent (its protocol is idle again after it)."""
    if not type(error).__module__.startswith("asyncpg"):
        return False
    import asyncpg

    return isinstance(error, asyncpg.PostgresError) and not _driver_unavailable(error)


def _driver_unavailable(error: BaseException) -> bool:
    """An error raised by asyncpg itself (`Database.driver_connection`), not wrapped."""
    if not type(error).__module__.startswith("asyncpg"):
        return False
    import asyncpg  # present whenever asyncpg raised this

    # InternalClientError: a connection whose protocol was left mid-operation by a fault (a
    # backend terminated while it sat in the pool); raised before anything is sent.
    if isinstance(error, asyncpg.InterfaceError | asyncpg.exceptions.PostgresConnectionError
                  | asyncpg.exceptions.InternalClientError):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


_UNIQUE_SQLITE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def is_conflict(error: BaseException) -> bool:
    """True when `error` is a unique-key violation: a concurrent transaction inserted the same
    row first (two first deliveries for one new user). Trying again finds the row."""
    if getattr(error, "sqlstate", None) == "23505":  # asyncpg's own (the driver path)
        return True
    if not isinstance(error, exc.IntegrityError):
        return False
    orig = error.orig
    return getattr(orig, "sqlstate", None) == "23505" or \
        getattr(orig, "sqlite_errorname", None) in _UNIQUE_SQLITE


def is_unstorable(error: BaseException) -> bool:
    """True when `error` is text refused for a NUL (JSON columns report it wrapped)."""
    return isinstance(error, UnstorableText) or (
        isinstance(error, exc.StatementError) and isinstance(error.orig, UnstorableText))


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT for the session's backend (PostgreSQL or SQLite), which can take
    `on_conflict_do_nothing()` / `on_conflict_do_update(...)`. Pass a Table for a Core statement
    (no ORM unit of work), a mapped class for an ORM-enabled one."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_for(dialect: str, table: Any) -> Any:
    """An INSERT for a backend by name (PostgreSQL or SQLite), with ON CONFLICT clauses."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


_STATEMENTS: dict[tuple[str, Callable[[str], Any]], Any] = {}


def statement(session: AsyncSession, build: Callable[[str], Any]) -> Any:
    """`build(dialect name)`, made once per backend and kept: a hot path then skips building the
    statement and its cache key on every call (values travel as execute() parameters)."""
    key = (session.get_bind().dialect.name, build)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = build(key[0])
    return found


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the session's backend (PostgreSQL or SQLite)."""
    return dialect_insert(session, table).on_conflict_do_nothing()


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the transaction of `session` has committed (never after a rollback).

    Only transactions opened by `Database.transaction()` run these: work that other processes
    must not see before the data they would re-read (a cache drop on every replica) goes here.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


class Database:
    """Owns the engine; hands out sessions and transactions."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_options)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._driver = DriverPool(self.engine, engine_options.get(
            "connect_args", POSTGRES_CONNECT_ARGS)) if self.backend == "postgresql" else None
        self._batches: dict[str, StatementBatch[Any, Any]] = {}

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error; then
        the callbacks registered with `after_commit` run, in order."""
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
            for callback in session.info.pop(_AFTER_COMMIT, []):
                await callback()

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """PostgreSQL only: an asyncpg connection (store/driver_pool.py), each statement
        committed on its own, for a hot path that sends its own SQL (`store.webhook_ingest`).
        Errors are asyncpg's own (`is_unavailable` and `is_conflict` know them)."""
        if self._driver is None:
            raise RuntimeError("the driver path is PostgreSQL's")
        pool = await self._driver.pool()
        async with pool.acquire(timeout=DRIVER_ACQUIRE_SECONDS) as connection:
            try:
                yield connection
            except BaseException as exc:
                # Only an error the server answered leaves the connection idle; after any
                # other (a cut, a cancellation mid-statement) it may be half-way through an
                # operation, and the pool resets nothing (driver_pool.py): close it.
                if not _answered_by_server(exc):
                    connection.terminate()
                raise

    def batch(self, name: str, make: Callable[[], Batch]) -> Batch:
        """The one `make()` of this name for this database: a hot statement's batcher
        (store/statement_batch.py), shared by every caller."""
        found = self._batches.get(name)
        if found is None:
            found = self._batches[name] = make()
        return cast(Batch, found)

    async def ping(self, limit_seconds: float = 2.0) -> None:
        """Raise if the database does not answer `SELECT 1` within `limit_seconds`."""
        async with asyncio.timeout(limit_seconds), self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close: the batches first (what is out finishes, what waits gets a 503), then the
        pools, so nothing is written after this returns."""
        for batch in self._batches.values():
            await batch.close()
        if self._driver is not None:
            await self._driver.close()
        await self.engine.dispose()
