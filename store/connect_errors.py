"""Why the database could not be reached, in one line an operator can act on.

An unreachable port, a misspelt host, a missing database or a refused role surface from the
driver as a long traceback with the cause on its last line. `explain` turns those into one
sentence naming the cause and the address from DATABASE_URL (never its password); anything else
is not a connection problem and is left alone (None), so a real bug keeps its traceback.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# PostgreSQL SQLSTATEs a connection attempt answers with (asyncpg and SQLAlchemy's adapter both
# carry them as `.sqlstate`).
_INVALID_CATALOG_NAME = "3D000"  # the database does not exist
_AUTHENTICATION_FAILED = "28P01"  # invalid_password: a wrong password
_INVALID_AUTHORIZATION = "28000"  # no such role, or pg_hba.conf has no entry for it
_CANNOT_CONNECT_NOW = "57P03"  # starting up, shutting down, in recovery
_TOO_MANY_CONNECTIONS = "53300"


class DatabaseUnreachableError(Exception):
    """The database could not be reached or refused the connection; str() says why in one
    line (no password). The original error is the `__cause__`."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped (`.orig`) and its causes, each once."""
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend([orig if isinstance(orig, BaseException) else None,
                        current.__cause__, current.__context__])


def _address(url: URL) -> str:
    host = url.host or str(url.query.get("host") or "localhost")
    return f"{host}:{url.port or 5432}"


def _server_message(error: BaseException) -> str:
    return str(error).splitlines()[0].strip() if str(error) else type(error).__name__


def _explain_one(error: BaseException, url: URL) -> str | None:
    address, database, role = _address(url), url.database or "", url.username or ""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate == _INVALID_CATALOG_NAME:
        return (f'database "{database}" does not exist on PostgreSQL at {address}: create it '
                f"(createdb -O {role or '<role>'} {database}) or fix the name in DATABASE_URL")
    if sqlstate == _AUTHENTICATION_FAILED:
        return (f'PostgreSQL at {address} refused role "{role}": wrong password (check the '
                "password in DATABASE_URL)")
    if sqlstate == _INVALID_AUTHORIZATION:
        return (f'PostgreSQL at {address} refused role "{role}": {_server_message(error)} '
                "(create the role, or fix the user in DATABASE_URL or pg_hba.conf)")
    if sqlstate in (_CANNOT_CONNECT_NOW, _TOO_MANY_CONNECTIONS):
        return f"PostgreSQL at {address} is not accepting connections: {_server_message(error)}"
    if isinstance(error, socket.gaierror):
        return (f'the database host "{url.host}" does not resolve (DNS: '
                f"{error.strerror or error}): check the host in DATABASE_URL")
    if isinstance(error, ConnectionRefusedError) or (
            isinstance(error, OSError) and error.errno == errno.ECONNREFUSED):
        return (f"PostgreSQL at {address} refused the connection: is it running and listening "
                "on that host and port? (DATABASE_URL)")
    if isinstance(error, TimeoutError):
        return (f"PostgreSQL at {address} did not answer in time: check the host and port in "
                "DATABASE_URL and any firewall between")
    if isinstance(error, OSError) and error.errno is not None:
        return f"cannot connect to PostgreSQL at {address}: {error.strerror or error}"
    return None


def explain(error: BaseException, database_url: str) -> str | None:
    """One line saying why connecting to `database_url` failed, or None when `error` is not a
    failure to connect to a network database (SQLite's errors keep their own text)."""
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        return None
    if url.get_backend_name() == "sqlite":
        return None
    for link in _chain(error):
        reason = _explain_one(link, url)
        if reason is not None:
            password = url.password
            if password:  # the message is built from parts that never hold it; make sure
                reason = reason.replace(str(password), "***")
            return reason
    return None
