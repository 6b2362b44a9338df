"""The embedded control API: `create_app(...)` wires the aiohttp application, nothing more.

It runs on the bot's own event loop (see `bot.py`), and in tests under pytest-aiohttp. The
middlewares, the routes and the resources are listed here in order; what each does lives in its
package: `edge` (the front door), `control` (the HTTP surface), `observability`, `webhooks`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import webhooks
from control import api_v1, operator, probes
from control.openapi import openapi_document
from control.policy import control_api_middleware
from edge.access_log import access_log_middleware
from edge.app_keys import (
    AUTH,
    DATABASE,
    GATEWAY,
    METRICS,
    OBSERVATORY,
    PREMIUM,
    RATE_LIMITER,
    REDIS,
    SETTINGS,
    STATS,
    GatewayStatus,
)
from edge.auth import AuthContext, Authenticator, GuildAdmins
from edge.body import MAX_BODY_BYTES, MAX_HEADER_BYTES
from edge.errors import error_middleware
from edge.lockout import FailureTracker
from edge.rate_limit import build_rate_limiter, rate_limit_middleware
from edge.redis_breaker import RedisBreaker, redis_client
from edge.request_id import request_id_middleware
from edge.security_headers import response_headers_hook
from members.premium import PremiumInvalidator
from observability.command_stats import CommandStats
from observability.prometheus import Metrics
from observability.recording import observability_middleware
from observability.series import Observatory
from store.database import Database
from utils.config import Settings
from utils.logging import get_logger
from webhooks.receive import webhook_handler

__all__ = ["create_app"]

log = get_logger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    gateway: GatewayStatus | None = None,
    premium: PremiumInvalidator | None = None,
    command_stats: CommandStats | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the application. Resources passed in stay open; ones made here close with it."""
    # A client connects on first use: made here, closed in the cleanup context below. Every
    # use goes through its circuit breaker (edge/redis_breaker.py).
    redis = RedisBreaker(
        redis_client(settings.redis_url.get_secret_value(), settings.redis_timeout_seconds),
        timeout=settings.redis_timeout_seconds, open_seconds=settings.redis_breaker_seconds,
    ) if settings.redis_url else None
    limiter = build_rate_limiter(settings, redis=redis, clock=clock)
    observatory = Observatory()
    metrics_registry = Metrics()
    app = web.Application(
        # Order matters: the request ID first (everything after can log and answer with it),
        # then the access log and the recorder (they see every outcome, 500s and 429s
        # included), errors, the rate limiter (a 429 costs no authentication work), then the
        # /api/v1 policy (authentication, scopes, lockout).
        middlewares=[request_id_middleware,
                     access_log_middleware(settings.trusted_proxies),
                     observability_middleware(observatory, metrics_registry),
                     error_middleware,
                     rate_limit_middleware(limiter, settings.trusted_proxies),
                     control_api_middleware()],
        client_max_size=MAX_BODY_BYTES,
        # Headers up to 16 KiB reach our handlers, which refuse oversized ones with the JSON
        # error shape; beyond that the server (edge/server.py) answers 431 in the same shape.
        # Bodies arrive as sent: webhook signatures cover the raw bytes, and edge.body inflates
        # gzip itself within the size limit (aiohttp would inflate before any check).
        handler_args={"max_field_size": MAX_HEADER_BYTES, "max_line_size": MAX_HEADER_BYTES,
                      "auto_decompress": False},
    )
    app.on_response_prepare.append(response_headers_hook(settings.security_headers()))

    if database is None:  # made here, so closed here; an engine connects only when used
        database = Database(settings.database_url)
        app.on_cleanup.append(lambda _: database.dispose())
    app[SETTINGS] = settings
    app[DATABASE] = database
    app[GATEWAY] = gateway
    app[REDIS] = redis
    app[METRICS] = metrics_registry
    app[OBSERVATORY] = observatory
    app[RATE_LIMITER] = limiter
    app[STATS] = command_stats if command_stats is not None else CommandStats()
    app[PREMIUM] = premium if premium is not None else PremiumInvalidator()
    app[AUTH] = AuthContext(
        authenticator=Authenticator(settings, database), database=database,
        trusted_proxies=settings.trusted_proxies, owner_ids=settings.owner_ids,
        guild_admins=gateway if isinstance(gateway, GuildAdmins) else None,
        failures=FailureTracker())
    app.cleanup_ctx.append(_redis_context)
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    """Every route of the API, in one place."""
    app.router.add_routes(probes.routes)
    app.router.add_routes(operator.routes)
    app.router.add_routes(api_v1.routes)
    app.router.add_get("/openapi.json", openapi_document)
    for spec in webhooks.WEBHOOKS:
        app.router.add_post(spec.path, webhook_handler(spec), name=spec.name)


async def _redis_context(app: web.Application) -> AsyncIterator[None]:
    """Premium invalidations from other replicas while the app runs; Redis closed after."""
    redis = app[REDIS]
    await app[PREMIUM].start(redis)  # subscribes in the background, through the breaker
    yield
    await app[PREMIUM].stop()
    if redis is not None:
        with contextlib.suppress(Exception):
            await redis.aclose()
