"""The Redis backend of the rate limiter: one budget per client shared by every replica.

A key this process has seen recently and that is far below its budget is decided here, with no
await; its hits are counted in Redis in one batch every `FLUSH_SECONDS`. Every other decision
waits for Redis, where an atomic script decides it; concurrent ones share one round trip.

**Worst-case over-admission.** Take a budget of L hits per window, a local share s (0.5) and N
replicas. A replica decides a hit here only while its view of the key - Redis's counts as last
answered (within `FRESH_SECONDS`) plus every hit of its own Redis has not answered for yet -
stays below s * L. Every hit this replica admitted in the window is in that view, whether
counted in Redis or not, so it makes at most floor(s * L) local decisions per key and window,
however stale its view of the others. A decision in Redis sees every hit already flushed, and a
replica's own unflushed hits go ahead of its decisions in the same batch; what it can miss is
only the other replicas' unflushed local hits. So a window admits at most
L + (N - 1) * floor(s * L) hits: exactly L with one replica, 1.5 L with two. The bound holds
whatever the timing, because it rests on counts, not on how fresh the view is; freshness and
the 50 ms flushes only make the common case exact. Hits decided here are never lost while Redis
answers (the flush adds them whatever the limit); a flush that fails keeps them and they are
sent again once Redis answers (a batch that failed after Redis applied it is counted twice,
which errs towards refusing). While Redis is away nothing is decided here: the limiter fails
open, as documented.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis_asyncio

from edge.rate_limit import Decision, Rate, decide, new_decision
from edge.redis_breaker import RedisBreaker, State

# Asks in a batch: KEYS holds (current window counter, previous window counter) per ask, ARGV
# (limit, window, elapsed in this window, count) per ask. Count 0 asks for a decision on one
# hit; a count n > 0 adds n hits already decided in the process (counted whatever the limit).
# Returns {allowed, previous, current before this ask's hits} per ask, in order.
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
MAX_BATCH = 256  # decisions per round trip
MAX_FLUSH = 4096  # keys whose local hits one round trip carries
LOCAL_SHARE = 0.5  # below this share of the budget (as seen here) a hit is decided here
FRESH_SECONDS = 1.0  # how old Redis's last answer for a key may be to decide it here
FLUSH_SECONDS = 0.05  # hits decided here are counted in Redis this often, many keys at once
RETRY_SECONDS = 0.5  # after a failed round trip, kept hits are offered again this often
MAX_KEYS = 100_000  # keys whose counts are remembered (dropped all at once beyond)


class _Key:
    """One key in one window: Redis's counts as last answered, and our hits since."""

    __slots__ = ("current", "current_key", "dirty", "local_limit", "previous", "previous_key",
                 "rate", "synced_at", "unsent", "unsynced", "window_index")

    def __init__(self, base: str, window_index: int, rate: Rate, share: float) -> None:
        self.window_index = window_index
        self.rate = rate
        self.current_key = f"{base}{window_index}"
        self.previous_key = f"{base}{window_index - 1}"
        self.local_limit = rate.limit * share
        self.previous = 0
        self.current = 0
        self.synced_at = -math.inf  # monotonic time of Redis's last answer for this key
        self.unsynced = 0  # our hits (decided here, or asked) Redis has not answered for
        self.unsent = 0  # hits decided here, not yet in a batch
        self.dirty = False  # on the list of keys to flush


class _Ask:
    """One decision on its way to Redis (`future` None: a flush of `count` local hits)."""

    __slots__ = ("count", "elapsed", "future", "key", "limit", "window")

    def __init__(self, key: _Key, rate: Rate, elapsed: float,
                 future: asyncio.Future[list[int]] | None, count: int = 0) -> None:
        self.key = key
        self.limit = rate.limit
        self.window = rate.window
        self.elapsed = repr(elapsed)
        self.future = future
        self.count = count


class RedisBackend:
    """Counters shared by every replica, atomic in Redis (see the module for the bound).

    One round trip is in flight at a time: decisions asked meanwhile, and the keys with local
    hits, go together in the next batch (the flushes first). With a `breaker`, every round trip
    goes through it: skipped at once while Redis is away, and a flush is the probe that tells
    when it is back.
    """

    def __init__(self, redis: redis_asyncio.Redis, prefix: str = "ratelimit:",
                 local_share: float = LOCAL_SHARE, *, breaker: RedisBreaker | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW_BATCH_LUA)
        self._local_share = local_share
        self._breaker = breaker
        self._monotonic = monotonic
        self._keys: dict[str, _Key] = {}
        self._asks: list[_Ask] = []  # decisions waiting for the next batch
        self._dirty: list[_Key] = []  # keys with hits decided here, not yet sent
        self._in_flight = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None  # kept referenced while in flight
        self._last_ok = False  # how the last round trip went
        self._drains: list[asyncio.Future[bool]] = []  # drain() waiting for a round trip
        self._usable = False  # the last round trip succeeded and the breaker is closed
        if breaker is not None:
            breaker.on_change(self._breaker_changed)
        self.round_trips = 0
        self.local_decisions = 0

    def _breaker_changed(self, state: State) -> None:
        if state != "closed":
            self._usable = False

    def _key(self, key: str, rate: Rate, window_index: int) -> _Key:
        found = self._keys.get(key)
        if found is None or found.window_index != window_index:
            if len(self._keys) >= MAX_KEYS:  # forget them, but for keys with unsent hits
                kept = {name: key for name, key in self._keys.items() if key.dirty}
                # (all of them when that frees too little: this must stay rare)
                self._keys = kept if len(kept) < MAX_KEYS // 2 else {}
            found = self._keys[key] = _Key(f"{self._prefix}{key}:{rate.window}:",
                                           window_index, rate, self._local_share)
        return found

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision | None:
        """The decision without waiting when it may be made here (see the module), else None."""
        found = self._keys.get(key)
        if found is None or not self._usable:
            return None
        window = rate.window
        window_index = int(now // window)
        if found.window_index != window_index \
                or self._monotonic() - found.synced_at > FRESH_SECONDS:
            return None
        elapsed = now - window_index * window
        used = found.previous * (1.0 - elapsed / window) + found.current + found.unsynced
        if used + 1 > found.local_limit:
            return None
        found.unsynced += 1
        found.unsent += 1
        self.local_decisions += 1
        if not found.dirty:
            found.dirty = True
            self._dirty.append(found)
            if not self._in_flight and self._timer is None:
                self._schedule(FLUSH_SECONDS)
        limit = rate.limit
        return new_decision(Decision, (True, limit, int(limit - used - 1), 0, window))

    async def hit(self, key: str, rate: Rate, now: float) -> Decision:
        local = self.hit_now(key, rate, now)
        if local is not None:
            return local
        window_index = int(now // rate.window)
        elapsed = now - window_index * rate.window
        found = self._key(key, rate, window_index)
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        found.unsynced += 1  # as if allowed, until Redis answers
        self._asks.append(_Ask(found, rate, elapsed, future))
        if not self._in_flight:
            self._schedule(0.0)
        allowed, previous, current = await future
        decision = decide(rate, int(previous), int(current), elapsed)
        if bool(allowed) != decision.allowed:  # the script decided; keep its verdict
            return Decision(bool(allowed), rate.limit, 0, decision.reset_after or 1, rate.window)
        return decision

    def _schedule(self, delay: float) -> None:
        """Send the next batch `delay` seconds from now (sooner replaces later)."""
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            if self._timer.when() <= loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._send_next)

    def _send_next(self) -> None:
        self._timer = None
        if self._in_flight:
            return
        asks: list[_Ask] = []
        while self._asks and len(asks) < MAX_BATCH:  # past the asks of callers gone
            taken = self._asks[:MAX_BATCH - len(asks)]
            del self._asks[:len(taken)]
            asks += [ask for ask in taken if not self._skip(ask)]
        flushes = [self._flush(found) for found in self._dirty[:MAX_FLUSH]]
        del self._dirty[:MAX_FLUSH]
        # An asked key's own local hits go ahead of its decision even past MAX_FLUSH: the bound
        # (see the module) rests on Redis deciding with every hit this replica admitted.
        asked_dirty = [ask.key for ask in asks if ask.key.dirty]
        if asked_dirty:
            flushes += [self._flush(found) for found in dict.fromkeys(asked_dirty)]
            self._dirty = [found for found in self._dirty if found.dirty]
        batch = flushes + asks  # our own local hits before our decisions
        if not batch:
            self._wake(True)
            return
        self._in_flight = True
        self._task = asyncio.get_running_loop().create_task(self._send(batch))
        self._task.add_done_callback(self._sent)

    @staticmethod
    def _flush(found: _Key) -> _Ask:
        """The ask that counts a key's local hits in Redis; the key is no longer dirty."""
        found.dirty = False
        ask = _Ask(found, found.rate, 0.0, None, found.unsent)
        found.unsent = 0
        return ask

    @staticmethod
    def _skip(ask: _Ask) -> bool:
        """A caller gone (cancelled): its decision is not asked."""
        assert ask.future is not None
        if ask.future.done():
            ask.key.unsynced -= 1
            return True
        return False

    async def _send(self, batch: list[_Ask]) -> None:
        keys: list[str] = []
        args: list[str | int] = []
        for ask in batch:
            keys += (ask.key.current_key, ask.key.previous_key)
            args += (ask.limit, ask.window, ask.elapsed, ask.count)
        self.round_trips += 1

        def call() -> Awaitable[Any]:
            return self._script(keys=keys, args=args)

        try:
            answer = await (self._breaker.run(call) if self._breaker is not None else call())
        except BaseException as exc:
            self._failed(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._last_ok = True
        self._usable = self._breaker is None or self._breaker.available
        now = self._monotonic()
        for index, ask in enumerate(batch):
            allowed, previous, current = answer[3 * index:3 * index + 3]
            found = ask.key
            counted = ask.count if ask.future is None else int(allowed)
            found.previous, found.current = int(previous), int(current) + counted
            found.synced_at = now
            found.unsynced -= ask.count if ask.future is None else 1
            if ask.future is not None and not ask.future.done():
                ask.future.set_result([allowed, previous, current])

    def _failed(self, batch: list[_Ask], exc: BaseException) -> None:
        """Waiters get the failure (and fail open); local hits are kept for a later flush."""
        self._usable = self._last_ok = False
        error = exc if isinstance(exc, Exception) else redis_asyncio.RedisError("cancelled")
        for ask in batch:
            found = ask.key
            if ask.future is None:
                found.unsent += ask.count
                if not found.dirty:
                    found.dirty = True
                    self._dirty.append(found)
            else:
                found.unsynced -= 1
                if not ask.future.done():
                    ask.future.set_exception(error)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight = False
        self._task = None
        if self._asks:
            self._schedule(0.0)  # someone waits
        elif self._dirty:  # local hits only: a little later, with more hits in the batch
            self._schedule(FLUSH_SECONDS if self._last_ok else RETRY_SECONDS)
        self._wake(self._last_ok)

    def _wake(self, ok: bool) -> None:
        drains, self._drains = self._drains, []
        for waiter in drains:
            if not waiter.done():
                waiter.set_result(ok)

    async def drain(self) -> bool:
        """Send what is waiting now and wait for the answers; False when Redis failed (what
        was decided here is kept for a later flush)."""
        while self._asks or self._dirty or self._in_flight:
            if not self._in_flight:
                self._schedule(0.0)
            waiter = asyncio.get_running_loop().create_future()
            self._drains.append(waiter)
            if not await waiter:
                return False
        return True
