"""A member's premium status: read through a small TTL cache that every replica drops at once.

Each process keeps a small TTL cache. An invalidation drops the local entry and, when Redis is
configured, is published on a channel that every replica's listener applies to its own cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as redis_asyncio

from store import accounts
from store.database import Database
from utils.logging import get_logger

log = get_logger(__name__)

INVALIDATION_CHANNEL = "premium:invalidate"


class PremiumCache:
    """User id -> premium flag, each entry kept `ttl` seconds; at most `max_entries` (LRU)."""

    def __init__(self, *, ttl: float = 300.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def get(self, user_id: str) -> bool | None:
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
        self._entries[user_id] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(user_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, user_id: str) -> None:
        self._entries.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._entries)


class PremiumInvalidator:
    """Drops a user's cached status here and, through Redis pub/sub, on every other replica."""

    def __init__(self, cache: PremiumCache | None = None,
                 redis: redis_asyncio.Redis | None = None) -> None:
        self.cache = cache if cache is not None else PremiumCache()
        self._redis = redis
        self._listener: asyncio.Task[None] | None = None

    async def invalidate(self, user_id: str) -> None:
        await self.invalidate_many((user_id,))

    async def invalidate_many(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self.cache.invalidate(user_id)
            if self._redis is not None:
                try:
                    await self._redis.publish(INVALIDATION_CHANNEL, user_id)
                except (OSError, redis_asyncio.RedisError) as exc:
                    log.warning("premium invalidation not published",
                                error_type=type(exc).__name__)

    async def start(self, redis: redis_asyncio.Redis | None = None) -> None:
        """Listen for other replicas' invalidations through `redis` (no-op without Redis)."""
        if redis is not None:
            self._redis = redis
        if self._redis is None:
            return
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(INVALIDATION_CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub), name="premium-invalidation")

    async def _listen(self, pubsub: redis_asyncio.client.PubSub) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except (OSError, redis_asyncio.RedisError) as exc:
                    log.warning("premium invalidation listener error",
                                error_type=type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                if message and message.get("type") == "message":
                    data = message["data"]
                    self.cache.invalidate(data.decode() if isinstance(data, bytes) else str(data))
        finally:
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
