"""Who is calling the control API: a Supabase user (JWT) or a service (API key).

Users: a Supabase JWT (`edge.tokens`); revocations are checked after the token cache, so a
revoked user is refused at once. Services: the static API_KEY (compared in constant time) has
every scope; scoped keys have the scopes they were created with.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from edge.auth_errors import AuthError, ProviderUnreachable
from edge.lockout import FailureTracker
from edge.tokens import JwksCache, JwtVerifier
from store import api_keys, audit, revocations
from store.database import Database
from utils.config import IPNetwork, Settings
from utils.secret_values import LiteralSecrets, SecretSource

__all__ = ["ANONYMOUS", "AuthContext", "AuthError", "Authenticator", "GuildAdmins",
           "JwksCache", "JwtVerifier", "Principal", "ProviderUnreachable"]

ALL_SCOPES = "*"
# What a signed-in user may ask for; guild routes also check that they admin that guild.
USER_SCOPES = api_keys.SCOPES - {"drive:sync", "auth:revoke", "observability:read"}


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "service", "anonymous"]
    scopes: frozenset[str]
    subject: str | None = None  # the Supabase user id of a user
    session_id: str | None = None
    key_prefix: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    def has_scope(self, scope: str) -> bool:
        return ALL_SCOPES in self.scopes or scope in self.scopes


ANONYMOUS = Principal("anonymous", frozenset())
# Development with no auth configured at all (never in production: startup refuses).
OPEN_DEVELOPMENT = Principal("service", frozenset({ALL_SCOPES}), key_prefix="development")


class Authenticator:
    """Secrets are read from `secrets` on every use, so a rotated API_KEY (a Secret Manager
    reference re-read on its TTL) takes effect without a restart."""

    def __init__(self, settings: Settings, database: Database, *,
                 secrets: SecretSource | None = None,
                 verifier: JwtVerifier | None = None) -> None:
        self._settings = settings
        self._database = database
        self._secrets = secrets if secrets is not None else LiteralSecrets(settings)
        self.verifier = verifier or JwtVerifier(settings, secrets=self._secrets)
        self.open_development = not settings.auth_configured and not settings.strict_security

    async def authenticate(self, authorization: str | None,
                           api_key: str | None) -> Principal:
        """The caller, or ANONYMOUS when no credential was presented at all."""
        if not (_plain(authorization) and _plain(api_key)):
            raise AuthError(401, "malformed credentials")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError(401, "expected a Bearer token")
            return await self._user(token.strip())
        if api_key:
            return await self._service(api_key)
        return OPEN_DEVELOPMENT if self.open_development else ANONYMOUS

    async def _user(self, token: str) -> Principal:
        if self._settings.supabase_url is None and self._settings.supabase_jwt_secret is None:
            raise AuthError(401, "token authentication is not configured")
        claims = await self.verifier.verify(token)
        if revocations.outlives_revocations(claims):
            raise AuthError(401, "token lives longer than a revocation is kept (at most 1 day "
                                 "from iat to exp)")
        if await revocations.is_revoked(self._database, claims):
            raise AuthError(401, "token revoked")
        return Principal("user", USER_SCOPES, subject=str(claims["sub"]),
                         session_id=claims.get("session_id"), claims=claims)

    def _static_key(self) -> bytes | None:
        value = self._secrets.value("API_KEY")
        return value.encode() if value else None

    async def _service(self, presented: str) -> Principal:
        static = self._static_key()
        if static is not None and hmac.compare_digest(presented.encode(), static):
            return Principal("service", frozenset({ALL_SCOPES}), key_prefix="static")
        key = await api_keys.find_valid_key(self._database, presented)
        if key is None:
            raise AuthError(401, "invalid API key")
        return Principal("service", frozenset(key.scopes.split()), key_prefix=key.prefix)

    def static_key_matches(self, presented: str | None) -> bool:
        """For operator routes: only the static service key, compared in constant time."""
        static = self._static_key()
        if static is None or presented is None or not _plain(presented):
            return False
        return hmac.compare_digest(presented.encode(), static)


def _plain(credential: str | None) -> bool:
    """Absent, or printable ASCII as every key and token is. A header's bytes that are not
    UTF-8 reach us as lone surrogates, which no comparison or hash may be handed."""
    return credential is None or (credential.isascii() and credential.isprintable())


@runtime_checkable
class GuildAdmins(Protocol):
    """Tells whether a Discord user administers a guild (the bot knows; see bot.py)."""

    async def is_guild_admin(self, discord_user_id: int, guild_id: int) -> bool: ...


@dataclass
class AuthContext:
    """What the /api/v1 policy needs to authenticate and authorize a caller."""

    authenticator: Authenticator
    database: Database
    trusted_proxies: tuple[IPNetwork, ...]
    owner_ids: frozenset[int]
    guild_admins: GuildAdmins | None
    failures: FailureTracker

    async def record_refusal(self, address: str, *, status: int, reason: str,
                             path: str) -> None:
        """Audit a refused credential. A 401 (a failed authentication: a guess) also counts
        toward the address's lockout; a 403 refuses a caller who did authenticate."""
        if status == 401:
            self.failures.fail(address)
        await audit.record_best_effort(self.database, "api.auth.refused", details={
            "status": status, "reason": reason, "path": path})
