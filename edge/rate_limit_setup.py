"""The one place the rate limiter is configured: RATE_LIMIT_* budgets per route class, and the
backend: this process's memory, or Redis shared by replicas (edge/rate_limit_redis.py)."""

from __future__ import annotations

import time

from edge.rate_limit import Clock, MemoryBackend, Rate, RateLimiter
from edge.rate_limit_redis import RedisBackend
from edge.redis_breaker import RedisBreaker
from utils.config import Settings


def build_rate_limiter(settings: Settings, *, redis: RedisBreaker | None,
                       clock: Clock = time.time) -> RateLimiter:
    """The limiter the settings describe; the Redis backend when RATE_LIMIT_BACKEND=redis."""
    rates = {name: Rate.parse(text) for name, text in (
        ("health", settings.rate_limit_health), ("read", settings.rate_limit_read),
        ("write", settings.rate_limit_write), ("webhook", settings.rate_limit_webhook))}
    if settings.rate_limit_backend == "redis" and redis is not None:
        # Every round trip goes through the breaker: skipped at once while Redis is away.
        return RateLimiter(rates, RedisBackend(redis.client, breaker=redis), clock=clock)
    return RateLimiter(rates, MemoryBackend(), clock=clock)
