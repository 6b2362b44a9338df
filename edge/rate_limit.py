"""Per-client rate limits: a sliding-window counter per (route class, client IP).

The estimate for a window of length W at time t is `previous * (1 - elapsed / W) + current`,
where `current` counts hits since the start of this fixed window and `previous` those of the one
before: O(1) state and O(1) work per decision, and never more than the limit in any window of
length W under a steady rate (the error is bounded by the previous window's burst).

Backends: `memory` (one process; the number of tracked keys is capped, oldest dropped first) and
`redis` (replicas share budgets: an atomic Lua script, concurrent decisions batched into one
round trip, keys far below their budget decided locally and counted in batches; see
edge/rate_limit_redis.py for the bound on over-admission). A backend error fails open: the
request is served, the failure counted (and logged once by the Redis breaker).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import redis.asyncio as redis_asyncio
from limits import parse
from multidict import istr

from edge.redis_breaker import RedisUnavailable
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


class Decision(NamedTuple):
    """A tuple, not a frozen dataclass: made on every request, it costs a third as much."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until a request would be allowed again (0 when allowed)
    window: int


# Decision(...) runs NamedTuple's __new__ in Python; the hot paths build the tuple directly.
new_decision = tuple.__new__


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


@runtime_checkable
class SharedBackend(Protocol):
    """A backend shared by replicas (Redis) that can decide some hits without waiting."""

    async def hit(self, key: str, rate: Rate, now: float) -> Decision: ...

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision | None: ...


class MemoryBackend:
    """Counters in this process, at most `max_keys` of them (least recently used dropped)."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._counters: OrderedDict[str, list[float]] = OrderedDict()  # window start, prev, curr

    def __len__(self) -> int:
        return len(self._counters)

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        return self.hit_now(key, rate, now)

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision:
        """`hit` without the await: a local decision needs no I/O."""
        limit, window = rate.limit, rate.window
        elapsed = now % window
        window_start = now - elapsed
        counters = self._counters
        state = counters.get(key)
        if state is None:
            state = counters[key] = [window_start, 0, 0]
            if len(counters) > self.max_keys:
                counters.popitem(last=False)
        else:
            counters.move_to_end(key)
            if window_start != state[0]:
                # One window later the current count becomes the previous; later, nothing.
                state[1] = state[2] if window_start - state[0] == window else 0
                state[2] = 0
                state[0] = window_start
        previous, current = int(state[1]), int(state[2])
        used = previous * (1.0 - elapsed / window) + current
        if used + 1 <= limit:  # decide()'s allowed case, inline: the path nearly every hit takes
            state[2] = current + 1
            return new_decision(Decision, (True, limit, int(limit - used - 1), 0, window))
        return decide(rate, previous, current, elapsed)


class RateLimiter:
    """Route classes with their own rates; a backend error fails open."""

    def __init__(self, rates: dict[str, Rate], backend: Backend, *,
                 clock: Clock = time.time) -> None:
        self.rates = rates
        self.backend = backend
        self.clock = clock
        self.refusals = 0
        self.backend_errors = 0
        # The memory backend decides without I/O: the edge calls this, with no await.
        self.check_now: Callable[[str, str], Decision] | None = \
            self._memory_check(backend) if isinstance(backend, MemoryBackend) else None
        # The Redis backend decides some requests without waiting (None: ask `check`).
        self.try_now: Callable[[str, str], Decision | None] | None = \
            self._shared_try(backend) if not isinstance(backend, MemoryBackend) \
            and isinstance(backend, SharedBackend) else None

    def _shared_try(self, backend: SharedBackend) -> Callable[[str, str], Decision | None]:
        hit_now, rates, clock = backend.hit_now, self.rates, self.clock

        def try_now(route_class: str, client: str) -> Decision | None:
            return hit_now(f"{route_class}:{client}", rates[route_class], clock())

        return try_now

    def _memory_check(self, backend: MemoryBackend) -> Callable[[str, str], Decision]:
        """The memory backend's decision as one call, its lookups bound once (every request
        takes this path)."""
        hit_now, rates, clock = backend.hit_now, self.rates, self.clock

        def check_now(route_class: str, client: str) -> Decision:
            decision = hit_now(f"{route_class}:{client}", rates[route_class], clock())
            if not decision[0]:
                self.refusals += 1
            return decision

        return check_now

    async def check(self, route_class: str, client: str) -> Decision | None:
        """The decision for one request, or None when the backend failed (fail open)."""
        try:
            decision = await self.backend.hit(f"{route_class}:{client}",
                                              self.rates[route_class], self.clock())
        except RedisUnavailable:  # the breaker logs the outage once, not every request
            self.backend_errors += 1
            return None
        except (OSError, TimeoutError, redis_asyncio.RedisError) as exc:
            self.backend_errors += 1
            log.warning("rate limiter backend unavailable: allowing the request",
                        error_type=type(exc).__name__)
            return None
        if not decision.allowed:
            self.refusals += 1
        return decision

    async def drain(self) -> None:
        """Count in the shared backend what was decided here (at shutdown), within a second."""
        drain = getattr(self.backend, "drain", None)
        if drain is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await drain()


_POLICIES: dict[tuple[str, int, int], str] = {}


RATELIMIT_POLICY = istr("RateLimit-Policy")
RATELIMIT = istr("RateLimit")


def rate_limit_policy(route_class: str, decision: Decision) -> str:
    policy_key = (route_class, decision.limit, decision.window)
    policy = _POLICIES.get(policy_key)
    if policy is None:  # a handful of classes: each policy string is made once
        policy = _POLICIES[policy_key] = \
            f'"{route_class}";q={decision.limit};w={decision.window}'
    return policy


def rate_limit_headers(route_class: str, decision: Decision) -> dict[str, str]:
    """IETF RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers)."""
    headers: dict[str, str] = {
        RATELIMIT_POLICY: rate_limit_policy(route_class, decision),
        RATELIMIT: f'"{route_class}";r={decision.remaining};t={decision.reset_after}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.reset_after)
    return headers


# --- Which budget a request spends (the edge middleware asks) ---------------------------------

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
