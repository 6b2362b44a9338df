"""Google Secret Manager: secrets read through the official client, cached, refreshed on a TTL.

A secret setting may hold a reference instead of a value: `gsm:NAME` (the latest version) or
`gsm:NAME@VERSION`. `SecretValues` (utils/secret_values.py) resolves every such reference of a
`Settings` at start
(`resolve_all()` names each one that cannot be read, never a value), serves the current values
synchronously from memory (`value()`), and re-reads each reference when its TTL runs out, so a
rotated secret takes effect without a restart; during a rotation the previous value stays
available for one TTL (`previous_value()`, `accepted_values()`), so webhooks signed with the old
secret are still accepted while senders switch.

`SecretManager` is the client side: a few `SecretManagerServiceClient`s (REST transport, each
serving one request at a time; utils/client_pool.py), built lazily in worker threads; every call
runs in a thread (`asyncio.to_thread`), never on the loop; values are cached `ttl` seconds and
failures `negative_ttl` seconds; concurrent misses of one secret make a single call. A read,
retries included, ends `timeout` seconds after it was asked for, and a client is held for one
request, not across the pauses between retries: reads asked for together (start-up) take one
`timeout` during an outage, however many references there are. Logs name the secret and where
it came from (cache, secret manager, error type), never its value; values read are registered
with the log masker.

Credentials: `GOOGLE_CREDENTIALS_JSON` (an inline service-account key) or Application Default
Credentials. The client authenticates with a self-signed JWT (no token endpoint). google-auth
(2.5x and later) then starts a *Regional Access Boundary* lookup after each token refresh: a
background request to `iamcredentials.googleapis.com/.../allowedLocations`
(`google.auth.credentials.CredentialsWithRegionalAccessBoundary._after_refresh`). It is skipped
only for non-default universes and `*.rep.googleapis.com` endpoints. When an endpoint override is
configured (a private endpoint, or a local stand-in in tests), that request would leave the
private network or hang an offline run, so `service_account_credentials(...,
boundary_lookup=False)` turns it off; with Google's own endpoints the library's default stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from utils.client_pool import ClientPool, NoClientInTime
from utils.config import Settings
from utils.logging import get_logger
from utils.sanitize import register_secrets

if TYPE_CHECKING:  # Google's libraries load when a client is first built, not at start-up
    from google.oauth2 import service_account

log = get_logger(__name__)

REFERENCE_PREFIX = "gsm:"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION = re.compile(r"[1-9][0-9]{0,18}|latest")


# --- References -------------------------------------------------------------------------------


class InvalidReference(ValueError):
    """A `gsm:` value that is not `gsm:NAME` or `gsm:NAME@VERSION`."""


@dataclass(frozen=True)
class SecretReference:
    """A secret of this project's Secret Manager; `version` is digits or `latest`."""

    name: str
    version: str = "latest"

    def path(self, project_id: str) -> str:
        return f"projects/{project_id}/secrets/{self.name}/versions/{self.version}"

    def __str__(self) -> str:
        return f"{REFERENCE_PREFIX}{self.name}@{self.version}"


def is_reference(value: str) -> bool:
    return value.startswith(REFERENCE_PREFIX)


def parse_reference(value: str) -> SecretReference:
    """`gsm:NAME` or `gsm:NAME@VERSION` -> SecretReference; InvalidReference otherwise.

    NAME: 1-255 of `A-Z a-z 0-9 _ -` (what Secret Manager allows); VERSION: a positive number or
    `latest`. The message never repeats the value.
    """
    if not is_reference(value):
        raise InvalidReference("a Secret Manager reference starts with gsm:")
    name, _, version = value[len(REFERENCE_PREFIX):].partition("@")
    if not _NAME.fullmatch(name):
        raise InvalidReference("the secret name must be 1-255 letters, digits, - or _")
    if "@" in value[len(REFERENCE_PREFIX):] and not _VERSION.fullmatch(version):
        raise InvalidReference("the version must be a positive number or 'latest'")
    return SecretReference(name, version or "latest")


# --- Credentials ------------------------------------------------------------------------------


class CredentialsError(ValueError):
    """A service-account key that cannot be used (the message never includes the key)."""


@functools.cache
def _no_boundary_lookup_credentials() -> type[service_account.Credentials]:
    """Service-account credentials that never start the Regional Access Boundary lookup."""
    from google.oauth2 import service_account

    class NoBoundaryLookupCredentials(service_account.Credentials):
        def _is_regional_access_boundary_lookup_required(self) -> bool:
            return False

    return NoBoundaryLookupCredentials


def service_account_credentials(
    key: str | Mapping[str, Any], *, scopes: Sequence[str] | None,
    boundary_lookup: bool = True,
) -> service_account.Credentials:
    """Credentials from a service-account key (JSON text or its parsed mapping).

    The key's own `token_uri` is honoured. `boundary_lookup=False` keeps google-auth from calling
    the IAM credentials service after a token refresh (see the module docstring).
    """
    try:
        info = json.loads(key) if isinstance(key, str) else dict(key)
    except ValueError:
        raise CredentialsError("the service-account key is not valid JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise CredentialsError("the key is not a service-account key (type service_account)")
    from google.oauth2 import service_account

    cls = service_account.Credentials if boundary_lookup else _no_boundary_lookup_credentials()
    try:
        credentials: service_account.Credentials = cls.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(scopes) if scopes else None)
        return credentials
    except (ValueError, KeyError) as exc:
        raise CredentialsError(
            f"the service-account key cannot be used ({type(exc).__name__})") from None


# --- The client -------------------------------------------------------------------------------


class SecretError(Exception):
    """A secret could not be read; `kind` is the error type, never a value."""

    def __init__(self, name: str, kind: str) -> None:
        super().__init__(f"secret {name!r} could not be read ({kind})")
        self.name = name
        self.kind = kind


@dataclass(frozen=True)
class SecretResult:
    value: str
    expires_at: float  # on the manager's clock
    source: str  # "cache" or "secret manager"


@dataclass(frozen=True)
class _Entry:
    value: str | None
    error: str | None
    expires_at: float


def _retry_policy(timeout: float) -> Any:
    """Retry what is worth retrying (unavailable, throttled, server errors), within `timeout`."""
    from google.api_core import exceptions as api_exceptions
    from google.api_core import retry as api_retry

    retryable = api_retry.if_exception_type(
        api_exceptions.ServiceUnavailable, api_exceptions.ResourceExhausted,
        api_exceptions.InternalServerError, api_exceptions.BadGateway,
        api_exceptions.GatewayTimeout)
    return api_retry.Retry(predicate=retryable, initial=0.2, maximum=2.0, multiplier=2.0,
                           timeout=timeout)


class SecretManager:
    """Reads secrets of one project, with a TTL cache, a negative cache and single flight.

    `clock` (monotonic seconds) can be injected so tests move time without sleeping.
    `client_factory` replaces how the Google client is built (it still runs in a thread);
    `max_clients` bounds how many reads are in flight at once.
    """

    def __init__(self, project_id: str, *, credentials_json: str | None = None,
                 api_endpoint: str | None = None, ttl: float = 3600.0,
                 negative_ttl: float = 30.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 client_factory: Callable[[], Any] | None = None,
                 max_clients: int = 4) -> None:
        self.project_id = project_id
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self._credentials_json = credentials_json
        self._api_endpoint = api_endpoint
        self._timeout = timeout
        self._clients: ClientPool[Any] = ClientPool(client_factory or self._build_client,
                                                    max_clients)
        self._calls_lock = threading.Lock()
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[SecretResult]] = {}
        self._generation = 0
        self.calls = 0  # requests made to Secret Manager (for tests and metrics)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SecretManager | None:
        """The manager for GOOGLE_PROJECT_ID, or None when it is not set."""
        if not settings.google_project_id:
            return None
        key = settings.google_credentials_json
        return cls(settings.google_project_id,
                   credentials_json=key.get_secret_value() if key else None,
                   api_endpoint=settings.secret_manager_api_endpoint,
                   ttl=settings.secret_cache_ttl,
                   negative_ttl=settings.secret_negative_cache_ttl, **options)

    def _build_client(self) -> Any:
        credentials: Any
        if self._credentials_json is not None:
            credentials = service_account_credentials(
                self._credentials_json, scopes=[CLOUD_PLATFORM_SCOPE],
                boundary_lookup=self._api_endpoint is None)
        else:
            import google.auth

            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        # Imported here: the client library takes a noticeable time to import, and an
        # installation without Secret Manager never needs it.
        from google.cloud.secretmanager_v1 import SecretManagerServiceClient

        # The REST transport keeps an http:// scheme given in the endpoint (local stand-ins).
        options = {"api_endpoint": self._api_endpoint} if self._api_endpoint else None
        return SecretManagerServiceClient(transport="rest", credentials=credentials,
                                          client_options=options)

    def _access(self, reference: SecretReference, deadline: float) -> str:
        """One blocking read, retried until `deadline` (runs in a worker thread)."""
        retrying = _retry_policy(max(deadline - time.monotonic(), 0.0))(self._request)
        data: bytes = retrying(reference, deadline).payload.data
        # A secret added with `echo value | gcloud ...` ends with a line break no sender or
        # client ever sends; other whitespace may be meant, so it stays.
        return data.decode("utf-8").rstrip("\r\n")

    def _request(self, reference: SecretReference, deadline: float) -> Any:
        """One request on a leased client (given back before the pause of a retry)."""
        from google.api_core import exceptions as api_exceptions

        try:
            with self._clients.lease(deadline) as client:
                with self._calls_lock:
                    self.calls += 1
                return client.access_secret_version(
                    request={"name": reference.path(self.project_id)}, retry=None,
                    timeout=max(deadline - time.monotonic(), 0.001))
        except NoClientInTime:  # raised by the lease only: the pool's own type
            raise api_exceptions.DeadlineExceeded(  # type: ignore[no-untyped-call]
                "every client stayed busy") from None

    async def get(self, name: str, version: str = "latest") -> str:
        """The secret's value; SecretError when it cannot be read."""
        return (await self.fetch(SecretReference(name, version))).value

    async def fetch(self, reference: SecretReference) -> SecretResult:
        """The value with its expiry and source (cache or Secret Manager)."""
        key = (reference.name, reference.version)
        entry = self._cache.get(key)
        if entry is not None and self.clock() < entry.expires_at:
            if entry.error is not None:
                log.debug("secret unavailable", secret_name=reference.name, source="negative cache",
                          error=entry.error)
                raise SecretError(reference.name, entry.error)
            assert entry.value is not None
            log.debug("secret served", secret_name=reference.name, source="cache")
            return SecretResult(entry.value, entry.expires_at, "cache")
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(reference))
            self._pending[key] = pending
            pending.add_done_callback(lambda future: self._settled(key, future))
        # Shielded: one caller giving up does not cancel the read the others wait for.
        return await asyncio.shield(pending)

    def _settled(self, key: tuple[str, str], future: asyncio.Future[SecretResult]) -> None:
        if self._pending.get(key) is future:
            del self._pending[key]
        if not future.cancelled():
            future.exception()  # retrieved here: nobody may be waiting any more

    async def _load(self, reference: SecretReference) -> SecretResult:
        generation = self._generation
        key = (reference.name, reference.version)
        # The budget starts now, not when a worker thread is free to start the read.
        deadline = time.monotonic() + self._timeout
        try:
            value = await asyncio.to_thread(self._access, reference, deadline)
        except Exception as exc:
            kind = type(exc).__name__
            from google.api_core import exceptions as api_exceptions

            if isinstance(exc, api_exceptions.RetryError) and exc.cause is not None:
                kind = type(exc.cause).__name__
            if generation == self._generation:
                self._cache[key] = _Entry(None, kind, self.clock() + self.negative_ttl)
            log.warning("secret unavailable", secret_name=reference.name, version=reference.version,
                        source="error", error=kind)
            raise SecretError(reference.name, kind) from None
        register_secrets([value])
        expires_at = self.clock() + self.ttl
        if generation == self._generation:
            self._cache[key] = _Entry(value, None, expires_at)
        log.info("secret read", secret_name=reference.name, version=reference.version,
                 source="secret manager")
        return SecretResult(value, expires_at, "secret manager")

    def clear(self) -> None:
        """Forget every cached value and failure (an owner's `/secrets refresh`)."""
        self._cache.clear()
        self._generation += 1

    async def close(self) -> None:
        for client in self._clients.drain():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.transport.close)
