"""Supabase JWTs: verified against the project's JWKS (ES256, RS256) or the legacy HS256 secret.

Asymmetric tokens are checked against the JWKS, fetched without blocking the loop, cached an
hour and refetched on an unknown `kid` at most every 30 s. One refresh runs at a time and the
callers waiting on it take its outcome; after a failed one, a key we do not hold is 503 at once
for 5 s instead of another round of retries. HS256 tokens only against
SUPABASE_JWT_SECRET, on a path of their own, so a public key can never be used as an HMAC
secret. `exp` (no leeway), `nbf`, `iss`, `aud` and the algorithm allow-list are enforced;
`none` is refused. Verified tokens are cached by their hash for 60 s (5000 at most).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from edge.auth_errors import AuthError, ProviderUnreachable
from utils.config import Settings
from utils.logging import get_logger
from utils.secret_values import LiteralSecrets, SecretSource

log = get_logger(__name__)

ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
JWKS_TTL_SECONDS = 3600.0
JWKS_REFETCH_SECONDS = 30.0
JWKS_FAILURE_BACKOFF_SECONDS = 5.0
TOKEN_CACHE_SECONDS = 60.0
TOKEN_CACHE_SIZE = 5000

Clock = Callable[[], float]


class JwksCache:
    """The project's public keys by `kid`."""

    def __init__(self, url: str, *, clock: Clock = time.monotonic,
                 timeout_seconds: float = 3.0) -> None:
        self.url = url
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._refreshes_finished = 0  # so a caller that waited on the lock sees one ran
        self._backoff_until = 0.0  # after a failed refresh: no new one before this
        self.fetches = 0

    async def key(self, kid: str) -> jwt.PyJWK:
        if self._needs_fetch(kid):
            await self._shared_refresh(kid)
        found = self._keys.get(kid)
        if found is None:
            self._refuse_during_backoff(kid)  # the endpoint is down: the key may be a new one
            raise AuthError(401, "unknown signing key")
        return found

    def _needs_fetch(self, kid: str) -> bool:
        """Never fetched, older than an hour, or an unknown kid at most every 30 s."""
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        return age > JWKS_TTL_SECONDS or (kid not in self._keys and age >= JWKS_REFETCH_SECONDS)

    async def _shared_refresh(self, kid: str) -> None:
        """Refresh unless one finished while we waited for the lock: then take its outcome, so
        callers queued behind a failing endpoint do not each run their own round of retries."""
        self._refuse_during_backoff(kid)
        finished_before = self._refreshes_finished
        async with self._lock:
            if self._refreshes_finished == finished_before and self._needs_fetch(kid):
                await self._refresh()
                self._refreshes_finished += 1  # not when cancelled: the next waiter tries

    def _refuse_during_backoff(self, kid: str) -> None:
        """Shortly after a failed refresh, a key we do not hold cannot be checked: 503 at once."""
        remaining = self._backoff_until - self._clock()
        if remaining > 0 and kid not in self._keys:
            raise ProviderUnreachable(retry_after=math.ceil(remaining))

    async def _refresh(self) -> None:
        try:
            async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(3), wait=wait_fixed(0.3), reraise=True,
                    retry=retry_if_exception_type((aiohttp.ClientError, TimeoutError))):
                with attempt:
                    document = await self._fetch()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("JWKS fetch failed", error_type=type(exc).__name__)
            self._backoff_until = self._clock() + JWKS_FAILURE_BACKOFF_SECONDS
            if self._keys:
                self._fetched_at = self._clock()  # keep serving the keys we have
            return
        keys = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or entry.get("alg", "ES256") not in \
                    ASYMMETRIC_ALGORITHMS or entry.get("kty") not in ("EC", "RSA"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, KeyError, ValueError):
                continue
        self._keys = keys
        self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str, Any]:
        self.fetches += 1
        async with aiohttp.ClientSession(timeout=self._timeout) as session, \
                session.get(self.url) as response:
            if response.status >= 500:
                raise aiohttp.ClientResponseError(response.request_info, (),
                                                  status=response.status)
            if response.status != 200:
                raise ValueError(f"JWKS answered {response.status}")
            document: dict[str, Any] = await response.json(content_type=None)
            return document


class TokenCache:
    """Verified claims by token hash, for 60 s and never past the token's own expiry."""

    def __init__(self, *, clock: Clock = time.time, size: int = TOKEN_CACHE_SIZE) -> None:
        self._clock = clock
        self._size = size
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> dict[str, Any] | None:
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, token: str, claims: dict[str, Any]) -> None:
        until = min(self._clock() + TOKEN_CACHE_SECONDS, float(claims.get("exp", 0)))
        self._entries[self._key(token)] = (until, claims)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class JwtVerifier:
    def __init__(self, settings: Settings, *, jwks: JwksCache | None = None,
                 secrets: SecretSource | None = None, clock: Clock = time.time) -> None:
        self._secrets = secrets if secrets is not None else LiteralSecrets(settings)
        self._issuer = f"{settings.supabase_url}/auth/v1" if settings.supabase_url else None
        self._audience = settings.supabase_jwt_audience
        self._clock = clock
        self.jwks = jwks if jwks is not None else (
            JwksCache(f"{settings.supabase_url}/auth/v1/.well-known/jwks.json")
            if settings.supabase_url else None)
        self.cache = TokenCache(clock=clock)

    async def verify(self, token: str) -> dict[str, Any]:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "malformed token") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256":
            secret = self._secrets.value("SUPABASE_JWT_SECRET")  # read each time: rotation
            if not secret:
                raise AuthError(401, "token algorithm not accepted")
            key = secret.encode()
        elif algorithm in ASYMMETRIC_ALGORITHMS:
            if self.jwks is None or not isinstance(header.get("kid"), str):
                raise AuthError(401, "token algorithm not accepted")
            signing_key = await self.jwks.key(header["kid"])
            if signing_key.algorithm_name != algorithm:
                raise AuthError(401, "token algorithm does not match its key")
            key = signing_key.key
        else:
            raise AuthError(401, "token algorithm not accepted")
        required = ["exp", "sub", "aud"] + (["iss"] if self._issuer is not None else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[algorithm], audience=self._audience,
                issuer=self._issuer, leeway=0, options={"require": required})
        except jwt.PyJWTError:
            raise AuthError(401, "invalid token") from None
        if claims["exp"] <= self._clock():
            raise AuthError(401, "invalid token")
        self.cache.put(token, claims)
        return claims
