"""Per-client rate limits: a sliding-window counter per (route class, client IP).

The estimate for a window of length W at time t is `previous * (1 - elapsed / W) + current`,
where `current` counts hits since the start of this fixed window and `previous` those of the one
before: O(1) state and O(1) work per decision, and never more than the limit in any window of
length W under a steady rate (the error is bounded by the previous window's burst).

Backends: `memory` (one process; the number of tracked keys is capped, oldest dropped first) and
`redis` (replicas share budgets; an atomic Lua script, concurrent decisions batched into one
round trip). A backend error
fails open: the request is served, a warning is logged and counted.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import redis.asyncio as redis_asyncio
from limits import parse
from multidict import istr

from utils.config import Settings
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
        return self.hit_now(key, rate, now)

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision:
        """`hit` without the await: a local decision needs no I/O."""
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


# Decisions in a batch: KEYS holds (current window counter, previous window counter) per
# decision, ARGV (limit, window, elapsed in this window) per decision. Returns
# {allowed, previous, current} per decision, in order; a key twice in a batch is counted twice.
_SLIDING_WINDOW_BATCH_LUA = """
local out = {}
for i = 1, #KEYS / 2 do
  local current_key = KEYS[2 * i - 1]
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local current = tonumber(redis.call('GET', current_key) or '0')
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local elapsed = tonumber(ARGV[3 * i])
  local weight = 1 - elapsed / window
  if weight < 0 then weight = 0 end
  if previous * weight + current + 1 <= limit then
    current = redis.call('INCR', current_key)
    if current == 1 then redis.call('EXPIRE', current_key, window * 2) end
    out[#out + 1] = 1
    out[#out + 1] = previous
    out[#out + 1] = current - 1
  else
    out[#out + 1] = 0
    out[#out + 1] = previous
    out[#out + 1] = current
  end
end
return out
"""
MAX_BATCH = 256

_Pending = tuple[str, str, int, int, str, "asyncio.Future[list[int]]"]


class RedisBackend:
    """Counters shared by every replica, atomic in Redis.

    Decisions are batched: while one round trip is in flight, the decisions asked meanwhile
    wait and then go together in one EVALSHA (at most MAX_BATCH), so under load a decision
    costs a fraction of a round trip; alone, one costs one round trip, as before.
    """

    def __init__(self, redis: redis_asyncio.Redis, prefix: str = "ratelimit:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW_BATCH_LUA)
        self._pending: list[_Pending] = []
        self._sending = False
        self._task: asyncio.Task[None] | None = None  # the batch in flight (kept referenced)
        self.round_trips = 0

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        window_index = int(now // rate.window)
        elapsed = now - window_index * rate.window
        base = f"{self._prefix}{key}:{rate.window}:"
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((f"{base}{window_index}", f"{base}{window_index - 1}",
                              rate.limit, rate.window, repr(elapsed), future))
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().call_soon(self._send_next)
        allowed, previous, current = await future
        decision = decide(rate, int(previous), int(current), elapsed)
        if bool(allowed) != decision.allowed:  # the script decided; keep its verdict
            return Decision(bool(allowed), rate.limit, 0, decision.reset_after or 1, rate.window)
        return decision

    def _send_next(self) -> None:
        """Send what is pending as one batch; the next batch goes when this one is answered."""
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        batch = [entry for entry in batch if not entry[5].done()]  # callers gone: skip
        if not batch:
            if self._pending:
                asyncio.get_running_loop().call_soon(self._send_next)
            else:
                self._sending = False
            return
        self._task = asyncio.get_running_loop().create_task(self._send(batch))
        self._task.add_done_callback(self._sent)

    async def _send(self, batch: list[_Pending]) -> None:
        keys: list[str] = []
        args: list[str | int] = []
        for current_key, previous_key, limit, window, elapsed, _ in batch:
            keys += (current_key, previous_key)
            args += (limit, window, elapsed)
        self.round_trips += 1
        try:
            answer = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every waiter gets the failure (and fails open)
            for entry in batch:
                if not entry[5].done():
                    entry[5].set_exception(exc if isinstance(exc, Exception)
                                           else redis_asyncio.RedisError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for index, entry in enumerate(batch):
            if not entry[5].done():
                entry[5].set_result(answer[3 * index:3 * index + 3])

    def _sent(self, task: asyncio.Task[None]) -> None:
        if self._pending:
            self._send_next()
        else:
            self._sending = False


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
            self._check_memory if isinstance(backend, MemoryBackend) else None

    def _check_memory(self, route_class: str, client: str) -> Decision:
        assert isinstance(self.backend, MemoryBackend)
        decision = self.backend.hit_now(f"{route_class}:{client}", self.rates[route_class],
                                        self.clock())
        if not decision.allowed:
            self.refusals += 1
        return decision

    async def check(self, route_class: str, client: str) -> Decision | None:
        """The decision for one request, or None when the backend failed (fail open)."""
        rate = self.rates[route_class]
        try:
            decision = await self.backend.hit(f"{route_class}:{client}", rate, self.clock())
        except (OSError, TimeoutError, redis_asyncio.RedisError) as exc:
            self.backend_errors += 1
            log.warning("rate limiter backend unavailable: allowing the request",
                        error_type=type(exc).__name__)
            return None
        if not decision.allowed:
            self.refusals += 1
        return decision


def build_rate_limiter(settings: Settings, *, redis: redis_asyncio.Redis | None,
                       clock: Clock = time.time) -> RateLimiter:
    """The one place the limiter is configured: RATE_LIMIT_* budgets per route class, and the
    Redis backend (shared by replicas) when RATE_LIMIT_BACKEND=redis."""
    rates = {name: Rate.parse(text) for name, text in (
        ("health", settings.rate_limit_health), ("read", settings.rate_limit_read),
        ("write", settings.rate_limit_write), ("webhook", settings.rate_limit_webhook))}
    backend: Backend = RedisBackend(redis) \
        if settings.rate_limit_backend == "redis" and redis is not None else MemoryBackend()
    return RateLimiter(rates, backend, clock=clock)


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
