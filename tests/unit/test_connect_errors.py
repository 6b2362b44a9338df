"""store.connect_errors: one line naming why the database cannot be reached, never the password;
anything that is not a failure to connect is left alone (it keeps its traceback)."""

from __future__ import annotations

import errno
import socket

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, ProgrammingError

from store.connect_errors import explain

URL = "postgresql+asyncpg://bot:S3cret-pw@db.example:6543/botdb"


def wrapped(error: Exception) -> DBAPIError:
    """As SQLAlchemy raises a driver's error: the driver's exception is `.orig`."""
    return DBAPIError("connect", None, error)


@pytest.mark.parametrize(("error", "expected"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
     "PostgreSQL at db.example:6543 refused the connection"),
    (OSError(errno.ECONNREFUSED, "Connection refused"),
     "PostgreSQL at db.example:6543 refused the connection"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
     'the database host "db.example" does not resolve (DNS: Name or service not known)'),
    (TimeoutError(), "PostgreSQL at db.example:6543 did not answer in time"),
    (OSError(errno.EHOSTUNREACH, "No route to host"),
     "cannot connect to PostgreSQL at db.example:6543: No route to host"),
    (wrapped(asyncpg.InvalidCatalogNameError('database "botdb" does not exist')),
     'database "botdb" does not exist on PostgreSQL at db.example:6543: create it '
     "(createdb -O bot botdb)"),
    (wrapped(asyncpg.InvalidPasswordError('password authentication failed for user "bot"')),
     'PostgreSQL at db.example:6543 refused role "bot": wrong password'),
    (wrapped(asyncpg.InvalidAuthorizationSpecificationError('role "bot" does not exist')),
     'PostgreSQL at db.example:6543 refused role "bot": role "bot" does not exist'),
    (wrapped(asyncpg.CannotConnectNowError("the database system is starting up")),
     "not accepting connections: the database system is starting up"),
])
def test_each_connection_failure_is_one_line_naming_its_cause(error: Exception,
                                                              expected: str) -> None:
    reason = explain(error, URL)
    assert reason is not None
    assert expected in reason
    assert "\n" not in reason
    assert "S3cret-pw" not in reason


def test_a_cause_found_down_the_chain_is_named() -> None:
    outer = RuntimeError("migration failed")
    outer.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert "refused the connection" in (explain(outer, URL) or "")


def test_the_password_never_appears_even_where_the_server_echoes_it() -> None:
    error = wrapped(asyncpg.InvalidAuthorizationSpecificationError(
        'role "bot" does not exist (S3cret-pw)'))
    reason = explain(error, URL)
    assert reason is not None
    assert "S3cret-pw" not in reason


@pytest.mark.parametrize("error", [
    ProgrammingError("CREATE TABLE", None, asyncpg.DuplicateTableError("exists")),
    ValueError("a bug"),
    KeyError("revision"),
])
def test_other_errors_are_not_connection_problems(error: Exception) -> None:
    assert explain(error, URL) is None


def test_sqlite_and_unparsable_urls_are_left_alone() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert explain(refused, "sqlite+aiosqlite:///./data/bot.db") is None
    assert explain(refused, "not a url") is None
