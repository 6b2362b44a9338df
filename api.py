"""The embedded control API: `create_app(...)` wires the aiohttp application, nothing more.

It runs on the bot's own event loop (see `bot.py`), and in tests under pytest-aiohttp. The
front door, the routes and the resources are listed here in order; what each does lives in its
package: `edge` (the front door), `control` (the HTTP surface), `observability`, `webhooks`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import webhooks
from control import api_v1, operator, probes, status_page
from control.openapi import openapi_document
from control.policy import control_api_middleware
from edge import front_door, refusals
from edge.app_keys import (
    AUTH,
    DATABASE,
    GATEWAY,
    KNOWLEDGE,
    METRICS,
    OBSERVATORY,
    OUTBOX_GAUGE,
    PREMIUM,
    RATE_LIMITER,
    RECORDER,
    REDIS,
    SECRETS,
    SETTINGS,
    SNAPSHOTS,
    STATS,
    GatewayStatus,
)
from edge.auth import AuthContext, Authenticator, GuildAdmins
from edge.body import MAX_BODY_BYTES, MAX_HEADER_BYTES
from edge.front_door import edge_middleware
from edge.lockout import FailureTracker
from edge.rate_limit_setup import build_rate_limiter
from edge.redis_breaker import redis_breaker
from knowledge.service import KnowledgeBase
from members.premium import PremiumInvalidator
from observability.command_stats import CommandStats
from observability.outbox_gauge import OutboxGauge
from observability.prometheus import Metrics
from observability.recording import Recorder
from observability.series import Observatory
from observability.snapshots import Snapshots
from store.database import Database
from utils.config import Settings
from utils.logging import get_logger
from utils.secret_values import LiteralSecrets, SecretSource
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
    secrets: SecretSource | None = None,
    knowledge: KnowledgeBase | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the application. Resources passed in stay open; ones made here close with it.

    ConfigError when a setting it needs cannot be used (REDIS_URL).
    """
    secrets = secrets if secrets is not None else LiteralSecrets(settings)
    # A client connects on first use: made here, closed in the cleanup context below. Every
    # use goes through its circuit breaker (edge/redis_breaker.py).
    redis = redis_breaker(settings, secrets)
    limiter = build_rate_limiter(settings, redis=redis, clock=clock)
    observatory = Observatory()
    metrics_registry = Metrics()
    recorder = Recorder(observatory, metrics_registry)
    # One front door (edge/front_door.py) around every handler, in order: the request ID, the
    # rate limiter (a 429 costs no authentication work), the /api/v1 policy (authentication,
    # scopes, lockout) for its paths, the error envelope, security headers; then the recorder
    # and the access line, which see every outcome, 500s and 429s included.
    edge = edge_middleware(security_headers=settings.security_headers(), limiter=limiter,
                           trusted=settings.trusted_proxies, recorder=recorder,
                           api_v1=control_api_middleware())
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        # Headers up to 16 KiB reach our handlers, which refuse oversized ones with the JSON
        # error shape; beyond that the server (edge/server.py) answers 431 in the same shape.
        # Bodies arrive as sent: webhook signatures cover the raw bytes, and edge.body inflates
        # gzip itself within the size limit (aiohttp would inflate before any check).
        handler_args={"max_field_size": MAX_HEADER_BYTES, "max_line_size": MAX_HEADER_BYTES,
                      "auto_decompress": False},
    )

    if database is None:  # made here, so closed here; an engine connects only when used
        database = Database(settings.database_url)
        app.on_cleanup.append(lambda _: database.dispose())
    app[SETTINGS] = settings
    app[DATABASE] = database
    app[GATEWAY] = gateway
    app[REDIS] = redis
    app[METRICS] = metrics_registry
    app[OBSERVATORY] = observatory
    app[RECORDER] = recorder
    app[OUTBOX_GAUGE] = OutboxGauge()
    app[SNAPSHOTS] = Snapshots()
    app[RATE_LIMITER] = limiter
    app[STATS] = command_stats if command_stats is not None else CommandStats()
    app[PREMIUM] = premium if premium is not None else PremiumInvalidator()
    app[SECRETS] = secrets
    if knowledge is None:  # made here, so closed here
        knowledge = KnowledgeBase.open(settings, database, secrets=secrets)
        app.on_cleanup.append(lambda _: knowledge.close())
    app[KNOWLEDGE] = knowledge
    app[AUTH] = AuthContext(
        authenticator=Authenticator(settings, database, secrets=secrets), database=database,
        trusted_proxies=settings.trusted_proxies, owner_ids=settings.owner_ids,
        guild_admins=gateway if isinstance(gateway, GuildAdmins) else None,
        failures=FailureTracker())
    app.cleanup_ctx.append(_redis_context)
    status_page.install(app)  # the per-minute history and the page's sessions
    app.cleanup_ctx.append(_outbox_gauge_context)
    setup_routes(app)
    refusals.install(app.router, front_door.around(edge))  # 404s and 405s from parts made once
    front_door.install(app.router, edge)  # around every route, as the router freezes
    return app


def setup_routes(app: web.Application) -> None:
    """Every route of the API, in one place."""
    app.router.add_routes(probes.routes)
    app.router.add_routes(operator.routes)
    app.router.add_routes(api_v1.routes)
    app.router.add_routes(status_page.routes)
    app.router.add_get("/openapi.json", openapi_document)
    enabled = app[SETTINGS].enabled_webhooks  # a disabled sender has no route: 404
    for spec in webhooks.WEBHOOKS:
        if spec.name in enabled:
            app.router.add_post(spec.path, webhook_handler(spec), name=spec.name)


async def _redis_context(app: web.Application) -> AsyncIterator[None]:
    """Premium invalidations from other replicas while the app runs; Redis closed after."""
    redis = app[REDIS]
    await app[PREMIUM].start(redis)  # subscribes in the background, through the breaker
    yield
    await app[PREMIUM].stop()
    await app[RATE_LIMITER].drain()  # hits decided locally are counted before Redis closes
    if redis is not None:
        with contextlib.suppress(Exception):
            await redis.aclose()


async def _outbox_gauge_context(app: web.Application) -> AsyncIterator[None]:
    """The outbox depth read at start, then kept fresh in the background (once a second)."""
    gauge = app[OUTBOX_GAUGE]
    await gauge.refresh(app[DATABASE])
    task = gauge.start(app[DATABASE])
    yield
    await gauge.stop(task)
