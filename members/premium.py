"""A member's premium status: read through a small TTL cache that every replica drops at once.

Each process keeps a small TTL cache. An invalidation drops the local entry and, when Redis is
configured, is published on a channel that every replica's listener applies to its own cache.
While Redis is away (its circuit breaker open, or this listener not subscribed) invalidations
from other replicas cannot arrive, so the cache stops trusting itself: it is emptied and every
read goes to the database until the listener is subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as redis_asyncio

from edge.redis_breaker import RedisBreaker, RedisUnavailable, State
from store import accounts
from store.database import Database
from utils.logging import get_logger

log = get_logger(__name__)

INVALIDATION_CHANNEL = "premium:invalidate"
LISTEN_SECONDS = 1.0  # one wait for a message; the loop checks Redis between waits


class PremiumCache:
    """User id -> premium flag, each entry kept `ttl` seconds; at most `max_entries` (LRU)."""

    def __init__(self, *, ttl: float = 300.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self.trusted = True

    def get(self, user_id: str) -> bool | None:
        if not self.trusted:
            return None
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[user_id]
            return None
        self._entries.move_to_end(user_id)
        return value

    def set(self, user_id: str, value: bool) -> None:
        if not self.trusted:
            return
        self._entries[user_id] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(user_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, user_id: str) -> None:
        self._entries.pop(user_id, None)

    def distrust(self) -> None:
        """Invalidations may be missed from now on: forget everything, cache nothing."""
        self.trusted = False
        self._entries.clear()

    def trust(self) -> None:
        """Invalidations arrive again: start from empty (some may have been missed)."""
        self._entries.clear()
        self.trusted = True

    def __len__(self) -> int:
        return len(self._entries)


class PremiumInvalidator:
    """Drops a user's cached status here and, through Redis pub/sub, on every other replica."""

    def __init__(self, cache: PremiumCache | None = None,
                 redis: RedisBreaker | None = None) -> None:
        self.cache = cache if cache is not None else PremiumCache()
        self._redis = redis
        self._listener: asyncio.Task[None] | None = None
        self._resubscribe = False

    async def invalidate(self, user_id: str) -> None:
        await self.invalidate_many((user_id,))

    async def invalidate_many(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self.cache.invalidate(user_id)
            if self._redis is not None:
                client = self._redis.client
                with contextlib.suppress(RedisUnavailable):  # the breaker logs the outage
                    await self._redis.run(functools.partial(client.publish,
                                                            INVALIDATION_CHANNEL, user_id))

    async def start(self, redis: RedisBreaker | None = None) -> None:
        """Listen for other replicas' invalidations through `redis` (no-op without Redis)."""
        if redis is not None:
            self._redis = redis
        if self._redis is None or self._listener is not None:
            return
        self._redis.on_change(self._breaker_changed)
        self._listener = asyncio.create_task(self._listen(self._redis),
                                             name="premium-invalidation")

    def _breaker_changed(self, state: State) -> None:
        if state == "open":
            self.cache.distrust()
            self._resubscribe = True  # the subscription may have gone silent with Redis

    async def _subscribe(self, breaker: RedisBreaker) -> redis_asyncio.client.PubSub:
        pubsub = breaker.client.pubsub(ignore_subscribe_messages=True)
        try:
            await breaker.run(lambda: pubsub.subscribe(INVALIDATION_CHANNEL))
        except RedisUnavailable:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return pubsub

    async def _listen(self, breaker: RedisBreaker) -> None:
        pubsub: redis_asyncio.client.PubSub | None = None
        next_ping = time.monotonic() + breaker.open_seconds
        try:
            while True:
                try:
                    if pubsub is None or self._resubscribe:
                        if pubsub is not None:
                            with contextlib.suppress(Exception):
                                await pubsub.aclose()  # type: ignore[no-untyped-call]
                            pubsub = None
                        self._resubscribe = False
                        pubsub = await self._subscribe(breaker)
                        self.cache.trust()
                    try:
                        message = await pubsub.get_message(timeout=LISTEN_SECONDS)
                    except (OSError, TimeoutError, redis_asyncio.RedisError) as exc:
                        breaker.failed(exc)  # counted and logged (once) by the breaker
                        raise RedisUnavailable(type(exc).__name__) from None
                    if message and message.get("type") == "message":
                        data = message["data"]
                        self.cache.invalidate(data.decode() if isinstance(data, bytes)
                                              else str(data))
                    if time.monotonic() >= next_ping:  # a silent Redis sends no error
                        next_ping = time.monotonic() + breaker.open_seconds
                        await breaker.run(breaker.client.ping)
                except RedisUnavailable:
                    self.cache.distrust()
                    self._resubscribe = True
                    await asyncio.sleep(max(breaker.seconds_until_probe(), 0.2))
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._redis = None


@dataclass(frozen=True)
class PremiumStatus:
    linked: bool
    premium: bool


async def premium_status(database: Database, cache: PremiumCache,
                         discord_user_id: int) -> PremiumStatus:
    """From the cache when fresh; the premium webhook invalidates it on every replica."""
    user_id = await accounts.linked_user_id(database, discord_user_id)
    if user_id is None:
        return PremiumStatus(linked=False, premium=False)
    cached = cache.get(user_id)
    if cached is not None:
        return PremiumStatus(linked=True, premium=cached)
    premium = await accounts.is_premium(database, user_id)
    cache.set(user_id, premium)
    return PremiumStatus(linked=True, premium=premium)
