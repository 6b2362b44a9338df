"""Operator endpoints: `/api/observability` (JSON) and `/metrics` (Prometheus), behind the
service key and ALLOWED_IPS."""

from __future__ import annotations

import hmac
import math
from typing import Any

from aiohttp import web

from control.params import responds
from edge.app_keys import (
    DATABASE,
    GATEWAY,
    METRICS,
    OBSERVATORY,
    RATE_LIMITER,
    REDIS,
    SETTINGS,
    STATS,
)
from edge.client_ip import client_ip, in_networks
from edge.errors import APIError
from edge.redis_breaker import STATE_VALUES
from observability.prometheus import prometheus_response
from store import outbox
from utils.config import IPNetwork
from utils.logging import get_logger

log = get_logger(__name__)

routes = web.RouteTableDef()


def check_operator(request: web.Request, *, api_key: str | None,
                   allowed: tuple[IPNetwork, ...], trusted: tuple[IPNetwork, ...]) -> None:
    """503 without a configured key, 403 from outside ALLOWED_IPS, 401 on a wrong key."""
    if api_key is None:
        raise APIError(503, "no service key is configured (API_KEY)")
    if allowed and not in_networks(client_ip(request, trusted), allowed):
        raise APIError(403, "address not allowed")
    presented = request.headers.get("X-Api-Key", "")
    if not hmac.compare_digest(presented.encode(), api_key.encode()):
        raise APIError(401, "invalid service key")


def _require_operator(request: web.Request) -> None:
    settings = request.app[SETTINGS]
    check_operator(request, api_key=settings.api_key.get_secret_value()
                   if settings.api_key else None, allowed=settings.allowed_ips,
                   trusted=settings.trusted_proxies)


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
        "redis": _redis_state(app),
    }


def _redis_state(app: web.Application) -> dict[str, Any] | None:
    breaker = app[REDIS]
    if breaker is None:
        return None
    return {"breaker": breaker.state, "failures": breaker.failures, "skipped": breaker.skipped,
            "opened": breaker.opened}


@routes.get("/api/observability")
@responds(200, dict[str, Any], "the report (see docs/api.md)")
async def observability(request: web.Request) -> web.Response:
    """Per route and webhook: counts, success rate, p50/p95/p99 (5 min and since start)."""
    _require_operator(request)
    report = request.app[OBSERVATORY].report()
    report.update(await operational_state(request.app))
    return web.json_response(report)


@routes.get("/metrics")
@responds(200, "text/plain", "Prometheus text format")
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
    redis = state["redis"]
    registry.redis_breaker_state.set(
        STATE_VALUES[redis["breaker"]] if redis is not None else math.nan)
    for status, count in (state["outbox"] or {}).items():
        registry.outbox.labels(status).set(count)
    return prometheus_response(registry.registry)
