"""Operator endpoints: `/api/observability` (JSON) and `/metrics` (Prometheus), behind
ALLOWED_IPS and the service key, a key with `observability:read` or a status-page session
(`control.observers`)."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from control.observers import require_observer
from edge.app_keys import DATABASE, GATEWAY, METRICS, OBSERVATORY, RATE_LIMITER, STATS
from observability.prometheus import prometheus_response
from store import outbox
from utils.logging import get_logger

log = get_logger(__name__)

routes = web.RouteTableDef()


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
    await require_observer(request)
    report = request.app[OBSERVATORY].report()
    report.update(await operational_state(request.app))
    return web.json_response(report)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (text format)."""
    await require_observer(request)
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
