"""The recording middleware: every request, whatever its outcome, into the series and Prometheus.

It sits outside the error and rate-limit middlewares, so it sees their 500s and 429s, and
records under the route template (so `/api/v1/guilds/1/config` and `.../2/config` are one series
and the number of series is bounded by the router).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from observability.prometheus import Metrics
from observability.series import UNMATCHED, Observatory, status_class


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if request.match_info.http_exception is not None or resource is None:
        return UNMATCHED
    return f"{request.method} {resource.canonical}"


def webhook_name(request: web.Request) -> str | None:
    if request.path.startswith("/webhooks/") and request.match_info.http_exception is None:
        return request.match_info.route.name
    return None


OutcomeHook = Callable[[web.Request, int, float], None]


def outcome_middleware(on_done: OutcomeHook) -> Middleware:
    """Call `on_done(request, status, seconds)` after every request, whatever its outcome:
    a response, an HTTP exception, an error (500) or a client that went away (499)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away; counted as a client-side failure
            raise
        finally:
            on_done(request, status, time.perf_counter() - started)

    return middleware


def observability_middleware(observatory: Observatory, metrics: Metrics) -> Middleware:
    """Counts and latencies. Outside the error and rate-limit middlewares, so it sees their
    500s and 429s."""

    def record(request: web.Request, status: int, seconds: float) -> None:
        route = route_template(request)
        observatory.record(route, webhook_name(request), status, seconds)
        metrics.observe_request(route, status, status_class(status), seconds)

    recorder = outcome_middleware(record)
    recorder.is_recorder = True  # type: ignore[attr-defined]  # bench/observability.py finds it
    return recorder
