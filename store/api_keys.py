"""Scoped API keys: made once, shown once, stored only as a SHA-256 hash.

A key reads `bk_<prefix>_<secret>`. The prefix finds the row; the secret's hash is compared in
constant time. The log pipeline masks anything of this shape.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from store.database import Database
from store.models import ApiKey, utcnow

# Every scope a route can require (control/api_v1.py; observability:read: the operator
# endpoints, control/observers.py). A key asks for a subset.
SCOPES = frozenset({"me:read", "guilds:read", "guilds:write", "audit:read", "stats:read",
                    "knowledge:read", "drive:sync", "auth:revoke", "observability:read"})
KEY_PATTERN = re.compile(r"bk_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{43})")
SCOPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(:[a-z0-9_]+)?")
_DURATION = re.compile(r"(\d{1,5})([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ApiKeyError(ValueError):
    """Bad input to an API key command; the message is safe to show."""


@dataclass(frozen=True)
class CreatedKey:
    id: int
    prefix: str
    plaintext: str  # shown once, never stored
    scopes: tuple[str, ...]
    expires_at: datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` -> timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ApiKeyError("expiry must look like 30d, 12h, 90m or 2w")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(sorted({part.strip() for part in text.split(",") if part.strip()}))
    if not scopes:
        raise ApiKeyError("at least one scope is required, e.g. --scopes drive:sync")
    bad = [scope for scope in scopes if not SCOPE_PATTERN.fullmatch(scope)]
    if bad:
        raise ApiKeyError(f"invalid scope name(s): {', '.join(bad)[:200]}")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ApiKeyError(f"unknown scope(s): {', '.join(unknown)[:200]}; "
                          f"known: {', '.join(sorted(SCOPES))}")
    return scopes


async def create_key(
    database: Database, *, name: str, scopes: tuple[str, ...], expires_in: timedelta | None
) -> CreatedKey:
    if not 1 <= len(name) <= 100:
        raise ApiKeyError("name must be 1 to 100 characters")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    expires_at = utcnow() + expires_in if expires_in else None
    async with database.transaction() as session:
        row = ApiKey(prefix=prefix, secret_sha256=hash_secret(secret), name=name,
                     scopes=" ".join(scopes), expires_at=expires_at)
        session.add(row)
        await session.flush()
        key_id = row.id
    return CreatedKey(key_id, prefix, f"bk_{prefix}_{secret}", scopes, expires_at)


async def list_keys(database: Database) -> list[ApiKey]:
    async with database.session() as session:
        return list((await session.scalars(select(ApiKey).order_by(ApiKey.id))).all())


async def revoke_key(database: Database, prefix: str) -> bool:
    """Revoke by prefix; False when no active key has it."""
    async with database.transaction() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        return True


async def find_valid_key(database: Database, presented: str) -> ApiKey | None:
    """The active, unexpired key matching `presented`, or None (compared in constant time)."""
    match = KEY_PATTERN.fullmatch(presented)
    if not match:
        return None
    prefix, secret = match.groups()
    async with database.session() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or not hmac.compare_digest(row.secret_sha256, hash_secret(secret)):
        return None
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return row
