"""The audit log: what happened, when, in which guild, by whom (as a salted hash only).

An actor is stored as HMAC-SHA256(salt, id): the same person gives the same hash, so events can
be correlated, but the id cannot be read back, and erasing a user never has to rewrite this
append-only table. The salt is random per installation and kept in `app_state`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.database import Database
from store.models import AppState, AuditLog, utcnow
from utils.logging import current_request_id, get_logger

log = get_logger(__name__)

SALT_KEY = "audit_actor_salt"
_AUDIT_LOG = cast(Table, AuditLog.__table__)
_INSERT = insert(_AUDIT_LOG)  # built once; the values travel as parameters
_salt_cache: dict[object, bytes] = {}  # by engine: one salt per database


async def actor_salt(session: AsyncSession) -> bytes:
    """This installation's salt, created on first use (safe when replicas race to create it)."""
    cache_key = session.get_bind().engine
    if cache_key in _salt_cache:
        return _salt_cache[cache_key]
    value = await session.scalar(select(AppState.value).where(AppState.key == SALT_KEY))
    if value is None:
        try:
            async with session.begin_nested():
                session.add(AppState(key=SALT_KEY, value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another process created it first
        value = await session.scalar(select(AppState.value).where(AppState.key == SALT_KEY))
    assert value is not None
    _salt_cache[cache_key] = bytes.fromhex(value)
    return _salt_cache[cache_key]


def hash_actor(salt: bytes, actor_id: str | int) -> str:
    return hmac.new(salt, str(actor_id).encode(), hashlib.sha256).hexdigest()


async def record(
    session: AsyncSession,
    event: str,
    *,
    guild_id: int | None = None,
    actor_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event in the caller's transaction. `details` must hold no personal data."""
    actor_hash = hash_actor(await actor_salt(session), actor_id) if actor_id is not None else None
    # A Core insert on the table: no ORM identity tracking or ORM insert path for rows that are
    # never read back here.
    await session.execute(_INSERT, {
        "event": event, "guild_id": guild_id, "actor_hash": actor_hash, "created_at": utcnow(),
        "request_id": current_request_id.get(), "details": details or {}})


async def record_best_effort(database: Database, event: str, *, guild_id: int | None = None,
                             actor_id: str | int | None = None,
                             details: dict[str, Any] | None = None) -> None:
    """Append one event in a transaction of its own; a failure is logged, never raised (a
    refusal must still be answered when the audit log cannot be written)."""
    try:
        async with database.transaction() as session:
            await record(session, event, guild_id=guild_id, actor_id=actor_id, details=details)
    except Exception as exc:
        log.warning("could not write an audit event", audit_event=event,
                    error_type=type(exc).__name__)
