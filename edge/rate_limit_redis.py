"""The Redis backend of the rate limiter: budgets shared by every replica.

Concurrent decisions go to Redis as one batch (one EVALSHA, one round trip in flight); a key far
below its budget is decided here and its hits are counted in Redis together shortly after.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import redis.asyncio as redis_asyncio

from edge.rate_limit import Decision, Rate, decide
from utils.logging import get_logger

log = get_logger(__name__)

Clock = Callable[[], float]

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
