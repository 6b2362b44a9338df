"""Typed keys for what the web application holds (`app[DATABASE]`, ...)."""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as redis_asyncio
from aiohttp import web

from store.database import Database
from utils.config import Settings
from utils.metrics import Metrics
from utils.observability import Observatory
from utils.premium_cache import PremiumInvalidator
from utils.rate_limit import RateLimiter


class GatewayStatus(Protocol):
    """What readiness needs to know of the Discord client (a `discord.Client` fits)."""

    def is_ready(self) -> bool: ...

    def is_closed(self) -> bool: ...


SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
GATEWAY: web.AppKey[GatewayStatus | None] = web.AppKey("gateway")
REDIS: web.AppKey[redis_asyncio.Redis | None] = web.AppKey("redis")
PREMIUM = web.AppKey("premium", PremiumInvalidator)
METRICS = web.AppKey("metrics", Metrics)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
OBSERVATORY = web.AppKey("observatory", Observatory)
