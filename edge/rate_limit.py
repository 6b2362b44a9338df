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

from edge.redis_breaker import RedisBreaker, RedisUnavailable
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
        previous, current = int(state[1]), int(state[2])
        limit, window = rate.limit, rate.window
        used = previous * max(0.0, 1.0 - (now - window_start) / window) + current
        if used + 1 <= limit:  # decide()'s allowed case, inline: the path nearly every hit takes
            state[2] += 1
            return Decision(True, limit, max(0, math.floor(limit - used - 1)), 0, window)
        return decide(rate, previous, current, now - window_start)


# Asks in a batch: KEYS holds (current window counter, previous window counter) per ask, ARGV
# (limit, window, elapsed in this window, count) per ask. Count 0 asks for a decision on one
# hit; a count n > 0 adds n hits already decided in the process (counted whatever the limit).
# Returns {allowed, previous, current before this ask's hits} per ask, in order; a key twice in
# a batch is counted twice.
_SLIDING_WINDOW_BATCH_LUA = """
local out = {}
for i = 1, #KEYS / 2 do
  local current_key = KEYS[2 * i - 1]
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local limit = tonumber(ARGV[4 * i - 3])
  local window = tonumber(ARGV[4 * i - 2])
  local elapsed = tonumber(ARGV[4 * i - 1])
  local count = tonumber(ARGV[4 * i])
  if count > 0 then
    local current = redis.call('INCRBY', current_key, count)
    if current == count then redis.call('EXPIRE', current_key, window * 2) end
    out[#out + 1] = 1
    out[#out + 1] = previous
    out[#out + 1] = current - count
  else
    local current = tonumber(redis.call('GET', current_key) or '0')
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
end
return out
"""
MAX_BATCH = 256
LOCAL_SHARE = 0.5  # below this share of the budget, a decision under load need not wait
MAX_SEEN = 100_000  # keys whose last shared counts are remembered
SEEN_SECONDS = 1.0  # how long a remembered count may stand in for Redis
BEHIND_SECONDS = 0.01  # hits decided here wait this long to be counted, to go many at a time


class _Seen:
    """A key's counts as Redis last answered them, and how many of our asks for it (decided
    here or waiting) Redis has not answered yet."""

    __slots__ = ("at", "behind", "current", "pending", "previous", "queued", "window_index")

    def __init__(self, window_index: int) -> None:
        self.window_index = window_index
        self.previous = 0
        self.current = 0
        self.pending = 0  # our hits (and decisions) Redis has not answered yet
        self.behind = 0  # hits decided here, not yet sent to be counted
        self.queued = False  # an ask carrying `behind` is in the next batch
        self.at = 0.0


class _Ask:
    """One decision (or one hit to count) on its way to Redis."""

    __slots__ = ("count", "current_key", "elapsed", "future", "limit", "previous_key", "seen",
                 "window")

    def __init__(self, current_key: str, previous_key: str, rate: Rate, elapsed: float,
                 seen: _Seen, future: asyncio.Future[list[int]] | None) -> None:
        self.current_key = current_key
        self.previous_key = previous_key
        self.limit = rate.limit
        self.window = rate.window
        self.elapsed = repr(elapsed)
        self.seen = seen
        self.future = future  # None: nobody waits (hits decided here, counted behind)
        self.count = 0  # for such an ask: how many hits it carries (set when sent)


class RedisBackend:
    """Counters shared by every replica, atomic in Redis.

    Decisions are batched: while one round trip is in flight, the decisions asked meanwhile
    go together in the next EVALSHA (at most MAX_BATCH), so a decision costs a fraction of a
    round trip. Under load (a round trip already in flight, Redis answering), a key whose
    count - as Redis last answered it, within the last second, plus our asks it has not
    answered yet - stays below half its budget is decided here without waiting, and its hit
    is counted in Redis with the next batch. Near the limit, or alone, or after a Redis
    failure, every decision waits for Redis (exact; a failure is seen and fails open). What
    other replicas spent in the last second is the only thing a local decision can miss, and
    it can only be made below half the budget.
    """

    def __init__(self, redis: redis_asyncio.Redis, prefix: str = "ratelimit:",
                 local_share: float = LOCAL_SHARE) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW_BATCH_LUA)
        self._local_share = local_share
        self._pending: list[_Ask] = []
        self._sending = False
        self._idle = asyncio.Event()  # set while nothing is pending or in flight
        self._idle.set()
        self._healthy = False  # the last round trip succeeded
        self._seen: dict[str, _Seen] = {}
        self._task: asyncio.Task[None] | None = None  # the batch in flight (kept referenced)
        self._timer: asyncio.TimerHandle | None = None  # a batch of counting only, delayed
        self.round_trips = 0
        self.local_decisions = 0

    def _seen_for(self, base: str, window_index: int) -> _Seen:
        seen = self._seen.get(base)
        if seen is None or seen.window_index != window_index:
            if len(self._seen) >= MAX_SEEN:
                self._seen.clear()
            seen = self._seen[base] = _Seen(window_index)
        return seen

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision | None:
        """The decision without waiting when it may be made here (see the class), else None."""
        if not (self._sending and self._healthy):
            return None
        window_index = int(now // rate.window)
        base = f"{self._prefix}{key}:{rate.window}:"
        seen = self._seen_for(base, window_index)
        if asyncio.get_running_loop().time() - seen.at >= SEEN_SECONDS:
            return None
        elapsed = now - window_index * rate.window
        weight = max(0.0, 1.0 - elapsed / rate.window)
        used = seen.previous * weight + seen.current + seen.pending
        if used + 1 > rate.limit * self._local_share:
            return None
        seen.pending += 1
        seen.behind += 1
        self.local_decisions += 1
        # Counted in Redis with the next batch (one is in flight now): one ask per key carries
        # all the hits decided here meanwhile.
        if not seen.queued:
            seen.queued = True
            self._pending.append(_Ask(f"{base}{window_index}", f"{base}{window_index - 1}",
                                      rate, elapsed, seen, None))
        return Decision(True, rate.limit, max(0, math.floor(rate.limit - used - 1)), 0,
                        rate.window)

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        local = self.hit_now(key, rate, now)
        if local is not None:
            return local
        window_index = int(now // rate.window)
        elapsed = now - window_index * rate.window
        base = f"{self._prefix}{key}:{rate.window}:"
        seen = self._seen_for(base, window_index)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        seen.pending += 1
        self._pending.append(_Ask(f"{base}{window_index}", f"{base}{window_index - 1}", rate,
                                  elapsed, seen, future))
        if not self._sending:
            self._sending = True
            self._idle.clear()
            loop.call_soon(self._send_next)
        elif self._timer is not None:  # only counting was waiting: someone waits now, go
            self._timer.cancel()
            self._timer = None
            loop.call_soon(self._send_next)
        allowed, previous, current = await future
        decision = decide(rate, int(previous), int(current), elapsed)
        if bool(allowed) != decision.allowed:  # the script decided; keep its verdict
            return Decision(bool(allowed), rate.limit, 0, decision.reset_after or 1, rate.window)
        return decision

    def _send_next(self) -> None:
        """Send what is pending as one batch; the next batch goes when this one is answered."""
        self._timer = None
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        # Callers gone: skip their decisions (hits counted behind are always sent).
        for ask in batch:
            if ask.future is not None and ask.future.done():
                ask.seen.pending = max(0, ask.seen.pending - 1)
        batch = [ask for ask in batch if ask.future is None or not ask.future.done()]
        if not batch:
            if self._pending:
                asyncio.get_running_loop().call_soon(self._send_next)
            else:
                self._sending = False
                self._idle.set()
            return
        self._task = asyncio.get_running_loop().create_task(self._send(batch))
        self._task.add_done_callback(self._sent)

    async def _send(self, batch: list[_Ask]) -> None:
        keys: list[str] = []
        args: list[str | int] = []
        for ask in batch:
            if ask.future is None:  # take the hits decided here so far
                ask.count, ask.seen.behind, ask.seen.queued = ask.seen.behind, 0, False
            keys += (ask.current_key, ask.previous_key)
            args += (ask.limit, ask.window, ask.elapsed, ask.count)
        self.round_trips += 1
        try:
            answer = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every waiter gets the failure (and fails open)
            self._healthy = False
            for ask in batch:
                ask.seen.pending = max(0, ask.seen.pending - max(1, ask.count))
                if ask.future is not None and not ask.future.done():
                    ask.future.set_exception(exc if isinstance(exc, Exception)
                                             else redis_asyncio.RedisError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        self._healthy = True
        now = asyncio.get_running_loop().time()
        for index, ask in enumerate(batch):
            allowed, previous, current = answer[3 * index:3 * index + 3]
            seen = ask.seen
            counted = ask.count if ask.future is None else int(allowed)
            seen.previous, seen.current, seen.at = int(previous), int(current) + counted, now
            seen.pending = max(0, seen.pending - max(1, ask.count))
            if ask.future is not None and not ask.future.done():
                ask.future.set_result([allowed, previous, current])

    async def drain(self) -> None:
        """Wait until every ask, hits counted behind included, has been sent and answered."""
        await self._idle.wait()

    def _sent(self, task: asyncio.Task[None]) -> None:
        if any(ask.future is not None for ask in self._pending):
            self._send_next()  # someone waits
        elif self._pending:  # counting only: a little later, with more hits in it
            self._timer = asyncio.get_running_loop().call_later(BEHIND_SECONDS,
                                                                self._send_next)
        else:
            self._sending = False
            self._idle.set()


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
        # The memory backend decides without I/O: the edge calls this, with no await.
        self.check_now: Callable[[str, str], Decision] | None = \
            self._check_memory if isinstance(backend, MemoryBackend) else None
        # The Redis backend decides some requests without waiting (None: ask `check`).
        self.try_now: Callable[[str, str], Decision | None] | None = \
            self._try_redis if isinstance(backend, RedisBackend) else None

    def _try_redis(self, route_class: str, client: str) -> Decision | None:
        assert isinstance(self.backend, RedisBackend)
        return self.backend.hit_now(f"{route_class}:{client}", self.rates[route_class],
                                    self.clock())

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
