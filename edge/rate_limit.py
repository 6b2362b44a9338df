"""Per-client rate limits: a sliding-window counter per (route class, client IP).

The estimate for a window of length W at time t is `previous * (1 - elapsed / W) + current`,
where `current` counts hits since the start of this fixed window and `previous` those of the one
before: O(1) state and O(1) work per decision, and never more than the limit in any window of
length W under a steady rate (the error is bounded by the previous window's burst).

Backends: `memory` (one process; the number of tracked keys is capped, oldest dropped first) and
`redis` (replicas share budgets; one round trip running an atomic Lua script). A backend error
fails open: the request is served, a warning is logged and counted.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis_asyncio
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from limits import parse

from edge.client_ip import client_ip
from edge.errors import error_response
from edge.redis_breaker import RedisBreaker, RedisUnavailable
from utils.config import IPNetwork, Settings
from utils.logging import get_logger

log = get_logger(__name__)

Clock = Callable[[], float]
DEFAULT_MAX_KEYS = 100_000


@dataclass(frozen=True)
class Rate:
    """`limit` requests per `window` seconds."""

    limit: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        item = parse(text)
        return cls(limit=item.amount, window=item.get_expiry())


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until a request would be allowed again (0 when allowed)
    window: int


def decide(rate: Rate, previous: int, current: int, elapsed: float) -> Decision:
    """The pure arithmetic: would one more hit stay within the limit?"""
    weight = max(0.0, 1.0 - elapsed / rate.window)
    used = previous * weight + current
    if used + 1 <= rate.limit:
        remaining = max(0, math.floor(rate.limit - used - 1))
        return Decision(True, rate.limit, remaining, 0, rate.window)
    # When will the previous window's share have decayed enough for one more hit?
    if previous > 0 and current + 1 <= rate.limit:
        needed_weight = (rate.limit - current - 1) / previous
        wait = (1.0 - needed_weight) * rate.window - elapsed
    else:
        wait = rate.window - elapsed
    return Decision(False, rate.limit, 0, max(1, math.ceil(wait)), rate.window)


class Backend(Protocol):
    async def hit(self, key: str, rate: Rate, now: float) -> Decision: ...


class MemoryBackend:
    """Counters in this process, at most `max_keys` of them (least recently used dropped)."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._counters: OrderedDict[str, list[float]] = OrderedDict()  # window start, prev, curr

    def __len__(self) -> int:
        return len(self._counters)

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        window_start = now - now % rate.window
        state = self._counters.get(key)
        if state is None:
            state = [window_start, 0.0, 0.0]
            self._counters[key] = state
            if len(self._counters) > self.max_keys:
                self._counters.popitem(last=False)
        else:
            self._counters.move_to_end(key)
            if window_start != state[0]:
                # One window later the current count becomes the previous; later, nothing.
                state[1] = state[2] if window_start - state[0] == rate.window else 0.0
                state[2] = 0.0
                state[0] = window_start
        decision = decide(rate, int(state[1]), int(state[2]), now - window_start)
        if decision.allowed:
            state[2] += 1
        return decision


# KEYS[1]: current window counter, KEYS[2]: previous window counter.
# ARGV: limit, window, elapsed in this window. Returns {allowed, previous, current}.
_SLIDING_WINDOW_LUA = """
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3])
local weight = 1 - elapsed / window
if weight < 0 then weight = 0 end
if previous * weight + current + 1 <= limit then
  current = redis.call('INCR', KEYS[1])
  if current == 1 then redis.call('EXPIRE', KEYS[1], window * 2) end
  return {1, previous, current - 1}
end
return {0, previous, current}
"""


class RedisBackend:
    """Counters shared by every replica: one EVALSHA per decision, atomic in Redis."""

    def __init__(self, redis: redis_asyncio.Redis, prefix: str = "ratelimit:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW_LUA)

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        window_index = int(now // rate.window)
        elapsed = now - window_index * rate.window
        base = f"{self._prefix}{key}:{rate.window}:"
        allowed, previous, current = await self._script(
            keys=[f"{base}{window_index}", f"{base}{window_index - 1}"],
            args=[rate.limit, rate.window, repr(elapsed)])
        decision = decide(rate, int(previous), int(current), elapsed)
        if bool(allowed) != decision.allowed:  # the script decided; keep its verdict
            return Decision(bool(allowed), rate.limit, 0, decision.reset_after or 1, rate.window)
        return decision


class RateLimiter:
    """Route classes with their own rates; a backend error fails open."""

    def __init__(self, rates: dict[str, Rate], backend: Backend, *,
                 clock: Clock = time.time, breaker: RedisBreaker | None = None) -> None:
        self.rates = rates
        self.backend = backend
        self.clock = clock
        self.breaker = breaker  # around a Redis backend: skipped at once while Redis is away
        self.refusals = 0
        self.backend_errors = 0

    async def check(self, route_class: str, client: str) -> Decision | None:
        """The decision for one request, or None when the backend failed (fail open)."""
        rate = self.rates[route_class]
        key = f"{route_class}:{client}"
        if self.breaker is not None:
            try:
                decision = await self.breaker.run(lambda: self.backend.hit(key, rate,
                                                                           self.clock()))
            except RedisUnavailable:  # the breaker logs the outage once, not every request
                self.backend_errors += 1
                return None
            if not decision.allowed:
                self.refusals += 1
            return decision
        try:
            decision = await self.backend.hit(key, rate, self.clock())
        except (OSError, TimeoutError, redis_asyncio.RedisError) as exc:
            self.backend_errors += 1
            log.warning("rate limiter backend unavailable: allowing the request",
                        error_type=type(exc).__name__)
            return None
        if not decision.allowed:
            self.refusals += 1
        return decision


def build_rate_limiter(settings: Settings, *, redis: RedisBreaker | None,
                       clock: Clock = time.time) -> RateLimiter:
    """The one place the limiter is configured: RATE_LIMIT_* budgets per route class, and the
    Redis backend (shared by replicas, behind the breaker) when RATE_LIMIT_BACKEND=redis."""
    rates = {name: Rate.parse(text) for name, text in (
        ("health", settings.rate_limit_health), ("read", settings.rate_limit_read),
        ("write", settings.rate_limit_write), ("webhook", settings.rate_limit_webhook))}
    if settings.rate_limit_backend == "redis" and redis is not None:
        return RateLimiter(rates, RedisBackend(redis.client), clock=clock, breaker=redis)
    return RateLimiter(rates, MemoryBackend(), clock=clock)


def rate_limit_headers(route_class: str, decision: Decision) -> dict[str, str]:
    """IETF RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers)."""
    headers = {
        "RateLimit-Policy": f'"{route_class}";q={decision.limit};w={decision.window}',
        "RateLimit": f'"{route_class}";r={decision.remaining};t={decision.reset_after}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.reset_after)
    return headers


# --- The aiohttp middleware -------------------------------------------------------------------

HEALTH_PATHS = frozenset({"/health", "/healthz", "/readyz", "/metrics", "/api/observability",
                          "/openapi.json"})
# Long-lived streaming and websocket routes: limiting their one request means nothing.
EXEMPT_PATHS: frozenset[str] = frozenset()
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def route_class(method: str, path: str) -> str | None:
    """Which budget a request spends: health, webhook, read or write (None: exempt)."""
    if path in EXEMPT_PATHS:
        return None
    if path in HEALTH_PATHS:
        return "health"
    if path.startswith("/webhooks/"):
        return "webhook"
    return "read" if method in READ_METHODS else "write"


def rate_limit_middleware(limiter: RateLimiter,
                          trusted: Sequence[IPNetwork]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = route_class(request.method, request.path)
        if kind is None:
            response: web.StreamResponse = await handler(request)
            return response
        decision = await limiter.check(kind, client_ip(request, trusted))
        if decision is None:  # backend down: fail open
            response = await handler(request)
            return response
        headers = rate_limit_headers(kind, decision)
        if not decision.allowed:
            return error_response(request, 429, "rate limit exceeded, retry later",
                                  headers=headers)
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response

    return middleware
