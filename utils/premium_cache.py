"""Cached premium status, invalidated on every replica when the billing service says so.

Each process keeps a small TTL cache. An invalidation drops the local entry and, when Redis is
configured, is published on a channel that every replica's listener applies to its own cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable

import redis.asyncio as redis_asyncio

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

    def __init__(self, cache: PremiumCache, redis: redis_asyncio.Redis | None) -> None:
        self.cache = cache
        self._redis = redis
        self._listener: asyncio.Task[None] | None = None

    async def invalidate(self, user_id: str) -> None:
        self.cache.invalidate(user_id)
        if self._redis is not None:
            try:
                await self._redis.publish(INVALIDATION_CHANNEL, user_id)
            except (OSError, redis_asyncio.RedisError) as exc:
                log.warning("premium invalidation not published", error_type=type(exc).__name__)

    async def start(self) -> None:
        """Listen for other replicas' invalidations (no-op without Redis)."""
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
