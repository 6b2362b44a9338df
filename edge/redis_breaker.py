"""A circuit breaker around every use of Redis (rate limiter, replay guard, premium cache and
its pub/sub listener, readiness).

Redis is shared state, never the only truth: each use has a way to do without it (the limiter
fails open, the replay guard falls back to the database's unique delivery id, the premium cache
stops trusting itself and reads the database). So a failing Redis must cost as little as possible:

- **closed**: calls go to Redis, each bounded by `timeout` (short: a fraction of a second). The
  first failure (an error, or no answer within `timeout`) opens the circuit.
- **open**: for `open_seconds` every call is skipped at once (`RedisUnavailable`), no waiting.
- **half-open**: then one call at a time is let through as a probe (the others still skip): an
  answer closes the circuit, a failure opens it for another `open_seconds`.

One log line when Redis stops answering and one when it answers again (the operator's view:
available or not), whatever the traffic. `state` feeds the `redis_breaker_state` gauge and
readiness (`degraded` while open). A Redis call therefore adds at most `timeout` to a request,
and only while the breaker is deciding: the first failures, and one probe per `open_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from utils.config import REDIS_URL_SCHEME_LIST, ConfigError, Settings
from utils.logging import get_logger
from utils.secret_values import SecretSource

log = get_logger(__name__)

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class RedisUnavailable(redis_asyncio.RedisError):
    """Redis was skipped (circuit open) or failed; the caller does without it."""


def redis_client(url: str, timeout: float) -> redis_asyncio.Redis:
    """A client that fails fast: socket and connect timeouts of `timeout`, and no retries (the
    breaker decides when to try again; redis-py's default retries multiplied every wait)."""
    return redis_asyncio.Redis.from_url(url, socket_timeout=timeout,
                                        socket_connect_timeout=timeout,
                                        retry=Retry(NoBackoff(), 0))


def redis_breaker(settings: Settings, secrets: SecretSource) -> RedisBreaker | None:
    """The client for REDIS_URL as resolved (a `gsm:` reference is read at start), behind its
    breaker; None without REDIS_URL. ConfigError, naming the variable and never the value,
    when it cannot be used."""
    if settings.redis_url is None:
        return None
    url = secrets.value("REDIS_URL")
    if url is None:
        raise ConfigError(["REDIS_URL: its Secret Manager reference could not be read, so "
                           "there is no Redis to connect to"])
    try:
        client = redis_client(url, settings.redis_timeout_seconds)
    except ValueError:  # redis-py's message may quote part of the URL (a password)
        problem = f"REDIS_URL: not a usable Redis URL ({REDIS_URL_SCHEME_LIST})"
        raise ConfigError([problem]) from None
    return RedisBreaker(client, timeout=settings.redis_timeout_seconds,
                        open_seconds=settings.redis_breaker_seconds)


class RedisBreaker:
    """The Redis client behind a circuit breaker: `await breaker.run(lambda: client.get(k))`."""

    def __init__(self, client: redis_asyncio.Redis, *, timeout: float = 0.25,
                 open_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.timeout = timeout
        self.open_seconds = open_seconds
        self._clock = clock
        self._state: State = "closed"
        self._retry_at = 0.0
        self._probing = False
        self._listeners: list[Callable[[State], None]] = []
        self._reset: asyncio.Future[None] | None = None
        self.failures = 0  # calls that failed
        self.skipped = 0  # calls not made because the circuit was open
        self.opened = 0  # times the circuit opened

    @property
    def state(self) -> State:
        return self._state

    @property
    def available(self) -> bool:
        """True while closed: Redis answered its last call."""
        return self._state == "closed"

    def on_change(self, listener: Callable[[State], None]) -> None:
        """Call `listener(new_state)` on every change (the premium cache stops trusting itself
        while Redis is away: invalidations from other replicas cannot reach it)."""
        self._listeners.append(listener)

    def seconds_until_probe(self) -> float:
        return max(0.0, self._retry_at - self._clock()) if self._state == "open" else 0.0

    async def run(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation()` within `timeout`, or RedisUnavailable at once while the circuit is open."""
        probe = False
        if self._state != "closed":
            if self._probing or self._clock() < self._retry_at:
                self.skipped += 1
                raise RedisUnavailable("circuit open")
            probe = self._probing = True
            self._change("half_open")
        try:
            async with asyncio.timeout(self.timeout):
                result = await operation()
        except (OSError, TimeoutError, redis_asyncio.RedisError) as exc:
            self.failed(exc)
            raise RedisUnavailable(type(exc).__name__) from None
        finally:
            if probe:
                self._probing = False
        if probe:  # only a probe closes: a call begun before the circuit opened proves nothing
            self._change("closed")
            log.info("redis answers again: circuit closed", failures=self.failures,
                     skipped=self.skipped)
        return result

    def failed(self, error: BaseException) -> None:
        """Count a failure seen outside `run` (a pub/sub connection that broke)."""
        self.failures += 1
        if self._state == "open":
            return  # a call that started before the circuit opened
        self._retry_at = self._clock() + self.open_seconds
        if self._state == "closed":
            self.opened += 1
            log.warning("redis unavailable: circuit open, doing without it",
                        error_type=type(error).__name__, retry_seconds=self.open_seconds)
        self._change("open")
        # Pooled connections may be broken (closed by a restart, or desynchronised by a
        # silence): drop them all, so the probe and the calls after it start afresh.
        self._reset = asyncio.ensure_future(self._drop_connections())

    async def _drop_connections(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.connection_pool.disconnect(inuse_connections=True)

    def _change(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        for listener in self._listeners:
            listener(state)

    async def aclose(self) -> None:
        await self.client.aclose()
