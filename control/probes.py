"""Health probes: liveness (`/health`, `/healthz`) and readiness (`/readyz`)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from control.params import reply, responds
from edge.app_keys import DATABASE, GATEWAY, REDIS
from edge.errors import error_response
from edge.redis_breaker import RedisUnavailable
from utils.logging import get_logger

log = get_logger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0

routes = web.RouteTableDef()
Check = Literal["ok", "off", "unavailable", "disconnected", "degraded"]


class Alive(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "degraded"]
    checks: dict[str, Check]


_OK = b'{"status": "ok"}'  # made once; a probe needs no JSON encoder (schema: Alive)


@routes.get("/health")
@routes.get("/healthz")
@responds(200, Alive)
async def liveness(request: web.Request) -> web.Response:
    """200 while the process serves requests; it checks nothing else on purpose."""
    return web.Response(body=_OK, content_type="application/json")


@routes.get("/readyz")
@responds(200, Ready)
async def readiness(request: web.Request) -> web.Response:
    """200 when the database answers and, with the bot on, the gateway is connected.

    With Redis configured, `checks.redis` is `ok`, or `degraded` (still 200) while its circuit
    breaker is open: replicas then do without shared state (docs/operations.md)."""
    checks: dict[str, Check] = {}
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
    redis = request.app[REDIS]
    if redis is not None:  # shared state only: without it this replica still serves, degraded
        client = redis.client
        try:
            await redis.run(client.ping)
            checks["redis"] = "ok"
        except RedisUnavailable:  # skipped at once while the breaker is open
            checks["redis"] = "degraded"
    failing = [part for part, state in checks.items() if state not in ("ok", "off", "degraded")]
    if failing:
        return error_response(request, 503, f"not ready: {', '.join(failing)}", checks=checks)
    degraded = "degraded" in checks.values()
    return reply(Ready(status="degraded" if degraded else "ready", checks=checks))
