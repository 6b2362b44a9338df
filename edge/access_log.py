"""One structured access-log line per request, through the masking pipeline."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from edge.client_ip import client_ip
from edge.request_id import request_id_of
from observability.recording import outcome_middleware, route_template
from utils.config import IPNetwork
from utils.logging import get_logger

access_log = get_logger("access")
# Probes hit every few seconds from every replica: they are counted, not logged.
QUIET_PATHS = frozenset({"/health", "/healthz", "/readyz", "/metrics"})


def access_log_middleware(trusted: tuple[IPNetwork, ...]) -> Middleware:
    """One structured line per request (probes excepted)."""

    def log_line(request: web.Request, status: int, seconds: float) -> None:
        if request.path not in QUIET_PATHS:
            access_log.info("request", method=request.method, route=route_template(request),
                            status=status, ms=round(seconds * 1000, 2),
                            request_id=request_id_of(request),
                            client_ip=client_ip(request, trusted))

    return outcome_middleware(log_line)
