"""The embedded control API: `create_app(...)` builds the aiohttp application.

It runs on the bot's own event loop (see `bot.py`), and in tests under pytest-aiohttp. The
order of middlewares matters: the request ID is set first so that everything after it, errors
included, can log and answer with it.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as redis_asyncio
from aiohttp import web

import webhooks
from store import outbox
from store.database import Database
from utils import control_api
from utils.app_keys import (
    DATABASE,
    GATEWAY,
    METRICS,
    OBSERVATORY,
    PREMIUM,
    RATE_LIMITER,
    REDIS,
    SETTINGS,
    GatewayStatus,
)
from utils.auth import Authenticator
from utils.config import Settings
from utils.control_api import CONTROL, STATS, ControlContext, FailureTracker, control_api_middleware
from utils.errors import error_middleware, error_response
from utils.logging import get_logger
from utils.metrics import CommandStats, Metrics
from utils.observability import (
    Observatory,
    access_log_middleware,
    check_operator,
    observability_middleware,
    prometheus_response,
)
from utils.openapi import openapi_document
from utils.premium_cache import PremiumCache, PremiumInvalidator
from utils.rate_limit import MemoryBackend, Rate, RateLimiter, RedisBackend, rate_limit_middleware
from utils.request_id import request_id_middleware
from utils.security_headers import response_headers_hook
from webhooks.common import webhook_handler

__all__ = ["DATABASE", "GATEWAY", "SETTINGS", "create_app"]

log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024
READINESS_TIMEOUT_SECONDS = 2.0

routes = web.RouteTableDef()


@routes.get("/health")
@routes.get("/healthz")
async def liveness(request: web.Request) -> web.Response:
    """200 while the process serves requests; it checks nothing else on purpose."""
    return web.json_response({"status": "ok"})


async def operational_state(app: web.Application) -> dict[str, Any]:
    """The bot, rate limiter and outbox figures shared by /api/observability and /metrics."""
    gateway = app[GATEWAY]
    latency = getattr(gateway, "latency", None)
    outbox_counts: dict[str, int] | None
    try:
        outbox_counts = await outbox.counts(app[DATABASE])
    except Exception as exc:  # the report must still answer while the database is away
        log.warning("outbox depth unavailable", error_type=type(exc).__name__)
        outbox_counts = None
    limiter = app[RATE_LIMITER]
    return {
        "bot": {
            "enabled": gateway is not None,
            "connected": bool(gateway and gateway.is_ready() and not gateway.is_closed()),
            "gateway_latency_ms": round(latency * 1000, 1)
            if isinstance(latency, float) and math.isfinite(latency) else None,
            "guilds": len(getattr(gateway, "guilds", []) or []),
            "commands": app[STATS].command_counts(),
        },
        "outbox": outbox_counts,
        "rate_limiter": {"refusals": limiter.refusals, "backend_errors": limiter.backend_errors},
    }


@routes.get("/api/observability")
async def observability(request: web.Request) -> web.Response:
    """Per route and webhook: counts, success rate, p50/p95/p99 (5 min and since start)."""
    _require_operator(request)
    report = request.app[OBSERVATORY].report()
    report.update(await operational_state(request.app))
    return web.json_response(report)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (text format)."""
    _require_operator(request)
    state = await operational_state(request.app)
    registry = request.app[METRICS]
    registry.rate_limit_refusals.set(state["rate_limiter"]["refusals"])
    registry.rate_limit_backend_errors.set(state["rate_limiter"]["backend_errors"])
    latency = state["bot"]["gateway_latency_ms"]
    registry.gateway_latency.set(latency / 1000 if latency is not None else math.nan)
    registry.guilds.set(state["bot"]["guilds"])
    for command, values in state["bot"]["commands"].items():
        registry.command_runs.labels(command, "ok").set(values["runs"] - values["failures"])
        registry.command_runs.labels(command, "failed").set(values["failures"])
    for status, count in (state["outbox"] or {}).items():
        registry.outbox.labels(status).set(count)
    return prometheus_response(registry.registry)


def _require_operator(request: web.Request) -> None:
    settings = request.app[SETTINGS]
    check_operator(request, api_key=settings.api_key.get_secret_value()
                   if settings.api_key else None, allowed=settings.allowed_ips,
                   trusted=settings.trusted_proxies)


@routes.get("/readyz")
async def readiness(request: web.Request) -> web.Response:
    """200 when the database answers and, with the bot on, the gateway is connected."""
    checks: dict[str, str] = {}
    try:
        await request.app[DATABASE].ping(limit_seconds=READINESS_TIMEOUT_SECONDS)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness: database unavailable", error_type=type(exc).__name__)
        checks["database"] = "unavailable"
    gateway = request.app[GATEWAY]
    if gateway is None:
        checks["discord"] = "off"
    else:
        checks["discord"] = "ok" if gateway.is_ready() and not gateway.is_closed() \
            else "disconnected"
    failing = [part for part, state in checks.items() if state not in ("ok", "off")]
    if failing:
        return error_response(request, 503, f"not ready: {', '.join(failing)}", checks=checks)
    return web.json_response({"status": "ready", "checks": checks})


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    gateway: GatewayStatus | None = None,
    premium_cache: PremiumCache | None = None,
    command_stats: CommandStats | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the application. Resources passed in stay open; ones made here close with it."""
    limiter = RateLimiter({name: Rate.parse(text) for name, text in (
        ("health", settings.rate_limit_health), ("read", settings.rate_limit_read),
        ("write", settings.rate_limit_write), ("webhook", settings.rate_limit_webhook))},
        MemoryBackend(), clock=clock)
    observatory = Observatory()
    metrics_registry = Metrics()
    app = web.Application(
        # Order matters: the request ID first (everything after can log and answer with it),
        # then the access log and the recorder (they see every outcome, 500s and 429s
        # included), errors, the rate limiter (a 429 costs no authentication work), then auth.
        middlewares=[request_id_middleware,
                     access_log_middleware(settings.trusted_proxies),
                     observability_middleware(observatory, metrics_registry),
                     error_middleware,
                     rate_limit_middleware(limiter, settings.trusted_proxies),
                     control_api_middleware()],
        client_max_size=MAX_BODY_BYTES,
        # Headers up to 16 KiB reach our handlers, which refuse oversized ones with the JSON
        # error shape; beyond that aiohttp's parser answers a plain-text 400 itself.
        handler_args={"max_field_size": MAX_HEADER_BYTES, "max_line_size": MAX_HEADER_BYTES},
    )
    app[SETTINGS] = settings
    app[GATEWAY] = gateway
    app[METRICS] = metrics_registry
    app[OBSERVATORY] = observatory
    app[RATE_LIMITER] = limiter
    app[STATS] = command_stats if command_stats is not None else CommandStats()
    app.on_response_prepare.append(response_headers_hook(settings.security_headers()))

    if database is None:  # made here, so closed here; an engine connects only when used
        database = Database(settings.database_url)
        app.on_cleanup.append(lambda _: database.dispose())
    app[DATABASE] = database
    app[CONTROL] = ControlContext(
        authenticator=Authenticator(settings, database), database=database,
        trusted_proxies=settings.trusted_proxies, owner_ids=settings.owner_ids,
        guild_admins=gateway if hasattr(gateway, "is_guild_admin") else None,  # type: ignore[arg-type]
        failures=FailureTracker())
    if premium_cache is None:
        premium_cache = PremiumCache()
    app.cleanup_ctx.append(_shared_state(settings, premium_cache))

    app.router.add_routes(routes)
    app.router.add_routes(control_api.routes)
    app.router.add_get("/openapi.json", openapi_document)
    for spec in webhooks.WEBHOOKS:
        app.router.add_post(spec.path, webhook_handler(spec), name=spec.name)
    return app


CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def _shared_state(settings: Settings, premium_cache: PremiumCache) -> CleanupContext:
    """Redis (when configured): replay guard, shared rate limits, premium invalidations."""

    async def shared_state_context(app: web.Application) -> AsyncIterator[None]:
        redis = None
        if settings.redis_url is not None:
            redis = redis_asyncio.Redis.from_url(settings.redis_url.get_secret_value(),
                                                 socket_timeout=2, socket_connect_timeout=2)
            if settings.rate_limit_backend == "redis":
                app[RATE_LIMITER].backend = RedisBackend(redis)
        app[REDIS] = redis
        app[PREMIUM] = PremiumInvalidator(premium_cache, redis)
        try:
            await app[PREMIUM].start()
        except (OSError, redis_asyncio.RedisError) as exc:
            log.warning("premium invalidations from other replicas are off",
                        error_type=type(exc).__name__)
        yield
        await app[PREMIUM].stop()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    return shared_state_context
