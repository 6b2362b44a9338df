"""Health probes: liveness (`/health`, `/healthz`) and readiness (`/readyz`)."""

from __future__ import annotations

from aiohttp import web

from edge.app_keys import DATABASE, GATEWAY
from edge.errors import error_response
from utils.logging import get_logger

log = get_logger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0

routes = web.RouteTableDef()
_OK = b'{"status": "ok"}'  # made once; a probe needs no JSON encoder


@routes.get("/health")
@routes.get("/healthz")
async def liveness(request: web.Request) -> web.Response:
    """200 while the process serves requests; it checks nothing else on purpose."""
    return web.Response(body=_OK, content_type="application/json")


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
