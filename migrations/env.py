"""Alembic environment, usable three ways.

- From the `alembic` CLI or `python bot.py migrate`: no event loop is running, so the async
  engine is driven with `asyncio.run`.
- From inside the running bot (`store.migrate`'s async functions, the `/migrate` command): they
  call Alembic in a worker thread, which has no loop of its own, so the first case applies there
  and the bot's loop is never blocked.
- With a connection handed in through `config.attributes["connection"]` (tests, scripts that
  already hold one): that connection is used as is.

`asyncio.run` inside a running loop raises; if Alembic is ever called synchronously from a
coroutine, the migration runs on a private loop in a helper thread instead of failing.
"""

from __future__ import annotations

import asyncio
import logging.config
from concurrent.futures import ThreadPoolExecutor

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

from store.database import create_engine
from store.models import Base, include_in_schema_comparison
from utils.config import Settings

MIGRATION_LOCK_KEY = 0x0B07_5C4E  # arbitrary, fixed: one lock for this app's migrations

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or Settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=database_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_in_schema_comparison,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together migrate one at a time; the others then find head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async_migrations())
        return
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, run_async_migrations()).result()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
