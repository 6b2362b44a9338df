"""Run Alembic from code: the CLI, startup, and the owner's `/migrate` command.

The synchronous functions drive Alembic directly (no loop may be running in this thread). The
async ones run the same functions in a worker thread so the event loop keeps serving while a
migration runs; their output is captured and returned as text.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from store import connect_errors
from store.connect_errors import DatabaseUnreachableError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(database_url: str, output: io.StringIO | None = None) -> Config:
    """An Alembic config for this project pointed at `database_url`."""
    config = Config(str(ALEMBIC_INI), stdout=output or io.StringIO())
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # `%` is ConfigParser's interpolation character; URLs may contain it (encoded passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def current_revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# One migration at a time in this process (the CLI, startup and `/migrate` share it).
_migration_lock = threading.Lock()


@contextmanager
def _capture_alembic_log(output: io.StringIO) -> Iterator[None]:
    """Alembic reports what it ran ("Running upgrade a -> b") through logging; keep it."""
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("alembic.runtime.migration")
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # captured here and returned: not also on the process log
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate


_NOISE = ("Context impl", "Will assume")


def _run(database_url: str, action: Callable[[Config], object]) -> str:
    """Run one Alembic command; a database that cannot be reached raises
    DatabaseUnreachableError saying why in one line (the driver's error is its cause)."""
    output = io.StringIO()
    with _migration_lock, _capture_alembic_log(output):
        try:
            action(alembic_config(database_url, output))
        except Exception as exc:
            reason = connect_errors.explain(exc, database_url)
            if reason is None:
                raise
            raise DatabaseUnreachableError(reason) from exc
    lines = output.getvalue().splitlines()
    return "\n".join(line for line in lines if not line.startswith(_NOISE)).strip()


def upgrade(database_url: str, revision: str = "head") -> str:
    return _run(database_url, lambda config: command.upgrade(config, revision)) \
        or "already at the requested revision"


def downgrade(database_url: str, revision: str = "-1") -> str:
    return _run(database_url, lambda config: command.downgrade(config, revision)) \
        or "already at the requested revision"


def current(database_url: str) -> str:
    return _run(database_url, lambda config: command.current(config, verbose=False)) \
        or "(no revision: empty database)"


def history(database_url: str) -> str:
    return _run(database_url, lambda config: command.history(config))


async def upgrade_async(database_url: str, revision: str = "head") -> str:
    return await asyncio.to_thread(upgrade, database_url, revision)


async def downgrade_async(database_url: str, revision: str = "-1") -> str:
    return await asyncio.to_thread(downgrade, database_url, revision)


async def current_async(database_url: str) -> str:
    return await asyncio.to_thread(current, database_url)
