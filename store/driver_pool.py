"""PostgreSQL: a small asyncpg pool of its own for the hot path that sends its own SQL.

Checking a connection out of SQLAlchemy's pool (Engine.connect, the pool's events, the reset on
return) cost a webhook delivery more CPU than its one statement. asyncpg's pool hands out a
connection in a few microseconds, and with `reset` a no-op it sends nothing on release: the
statements run here are single autocommit statements that leave no session state behind (no
SET, LISTEN, cursors or advisory locks), so there is nothing to reset. The connection settings
are the engine's own (its URL through the dialect, its timeouts).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

MAX_CONNECTIONS = 10  # enough for the webhook concurrency a replica sees
CLOSE_SECONDS = 10.0  # for connections to come back at close; then they are cut
# Query options of a URL that are SQLAlchemy's (its statement cache), not asyncpg's.
_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func",
                    "async_creator_fn")


async def _no_reset(_connection: Any) -> None:
    """Nothing to reset (see the module's docstring); asyncpg then sends no query."""


class DriverPool:
    """Made on first use: a process that never takes the hot path opens no connection."""

    def __init__(self, engine: AsyncEngine, connect_args: dict[str, Any]) -> None:
        self._engine = engine
        self._connect_args = connect_args
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._closed:  # no new pool once closed: nobody would close it
                    raise ConnectionError("the database is closing")
                if self._pool is None:
                    import asyncpg  # only PostgreSQL deployments need it

                    args, options = self._engine.dialect.create_connect_args(self._engine.url)
                    for name in _SQLALCHEMY_ONLY:
                        options.pop(name, None)
                    self._pool = await asyncpg.create_pool(
                        *args, **{**options, **self._connect_args}, min_size=0,
                        max_size=MAX_CONNECTIONS, reset=_no_reset)
        return self._pool

    async def close(self) -> None:
        """Close the pool (waiting up to CLOSE_SECONDS for connections in use); none after."""
        async with self._lock:  # after a pool being made, so that one is closed too
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_SECONDS)
            except TimeoutError:
                pool.terminate()
