"""Operator endpoints: `/api/observability` (JSON) and `/metrics` (Prometheus), behind
ALLOWED_IPS and the service key, a key with `observability:read` or a status-page session
(`control.observers`).

Neither touches the database: the outbox depth comes from the in-memory gauge (with its
`as_of`), and each body is built at most once per SNAPSHOT_SECONDS and then served as it is, so
a request costs a key check and a copy of bytes whatever the traffic, the uptime or the size of
any table.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from control.observers import require_observer
from control.params import responds
from edge.app_keys import (
    GATEWAY,
    METRICS,
    OBSERVATORY,
    OUTBOX_GAUGE,
    RATE_LIMITER,
    REDIS,
    SNAPSHOTS,
    STATS,
)
from edge.redis_breaker import STATE_VALUES
from utils.logging import get_logger

log = get_logger(__name__)

routes = web.RouteTableDef()



def operational_state(app: web.Application) -> dict[str, Any]:
    """The bot, rate limiter and outbox figures shared by /api/observability and /metrics (all
    in memory: the outbox depth is the gauge's last reading, at `outbox_as_of`)."""
    gateway = app[GATEWAY]
    latency = getattr(gateway, "latency", None)
    gauge = app[OUTBOX_GAUGE]
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
        "outbox": dict(gauge.counts) if gauge.counts is not None else None,
        "outbox_as_of": gauge.as_of_iso(),
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
    await require_observer(request)
    app = request.app

    def build() -> bytes:
        report = app[OBSERVATORY].report()
        report.update(operational_state(app))
        return json.dumps(report).encode()

    return web.Response(body=app[SNAPSHOTS].get("observability", build),
                        content_type="application/json")


@routes.get("/metrics")
@responds(200, "text/plain", "Prometheus text format")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (text format)."""
    await require_observer(request)
    app = request.app
    response = web.Response(body=app[SNAPSHOTS].get("metrics", lambda: _prometheus_text(app)))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def _prometheus_text(app: web.Application) -> bytes:
    state = operational_state(app)
    registry = app[METRICS]
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
    return generate_latest(registry.registry)
