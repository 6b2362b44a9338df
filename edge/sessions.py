"""Signed, expiring session cookies for the operator status page (`control.status_page`).

A session is `v1.<expires>.<nonce>.<signature>`: the expiry (Unix seconds), 16 random bytes,
and an HMAC-SHA256 over both. Nothing secret is inside and nothing is stored per session.

The signing key is derived from API_KEY (HMAC-SHA256 of API_KEY over a fixed label), not drawn
at random per process: every replica behind a load balancer accepts a session another replica
issued, a restart keeps operators signed in, and rotating API_KEY ends every session at once.
The derived key is never the API_KEY itself, so a cookie reveals nothing about it.

Signing out deletes the cookie in the browser and this process refuses that session until it
expires (a bounded set of revoked nonces); another replica would accept a copied cookie until
its expiry, so rotate API_KEY to end sessions everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

SESSION_SECONDS = 12 * 3600
COOKIE_NAME = "status_session"
# With Secure, the __Host- prefix also makes browsers refuse the cookie from a subdomain or for
# another path (and any cookie of that name that is not Secure).
SECURE_COOKIE_NAME = "__Host-status_session"
MAX_REVOKED = 10_000
_LABEL = b"community-bot status-page session v1"
_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SessionSigner:
    """`api_key` may be a callable reading the current API_KEY: a rotated key (Secret Manager)
    signs new sessions and ends the old ones, without a restart."""

    def __init__(self, api_key: str | Callable[[], str | None], *,
                 seconds: int = SESSION_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._api_key = api_key if callable(api_key) else (lambda: api_key)
        self._derived: tuple[str, bytes] | None = None
        self.seconds = seconds
        self._clock = clock
        self._revoked: dict[str, float] = {}  # nonce -> expiry

    def _key(self) -> bytes:
        api_key = self._api_key()
        if not api_key:  # no key now: nothing signed can be valid
            return secrets.token_bytes(32)
        if self._derived is None or self._derived[0] != api_key:
            self._derived = (api_key, hmac.new(api_key.encode(), _LABEL, hashlib.sha256).digest())
        return self._derived[1]

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key(), payload.encode(), hashlib.sha256).digest())

    def issue(self) -> str:
        payload = f"{_VERSION}.{int(self._clock()) + self.seconds}.{_b64(secrets.token_bytes(16))}"
        return f"{payload}.{self._signature(payload)}"

    def _parse(self, token: str | None) -> tuple[str, float] | None:
        """(nonce, expiry) of a genuine, unexpired session; None otherwise."""
        if not token or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isascii() \
                or not parts[1].isdigit():
            return None
        payload = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3].encode(), self._signature(payload).encode()):
            return None
        expires = float(parts[1])
        if expires <= self._clock():
            return None
        return parts[2], expires

    def valid(self, token: str | None) -> bool:
        parsed = self._parse(token)
        return parsed is not None and parsed[0] not in self._revoked

    def revoke(self, token: str | None) -> None:
        parsed = self._parse(token)
        if parsed is None:
            return
        now = self._clock()
        if len(self._revoked) >= MAX_REVOKED:
            self._revoked = {nonce: until for nonce, until in self._revoked.items()
                             if until > now}
            while len(self._revoked) >= MAX_REVOKED:  # all still live: drop the oldest
                del self._revoked[next(iter(self._revoked))]
        self._revoked[parsed[0]] = parsed[1]


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE_NAME if secure else COOKIE_NAME
