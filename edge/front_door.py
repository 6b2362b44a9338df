"""The front door: one layer carries what every request needs, in one frame.

In order: the request ID (the client's when it is safe to echo, else a new one), bound for log
records and audit rows; the rate limiter (a 429 costs no authentication work); the handler,
through the /api/v1 policy for its paths; the error envelope (`{"detail", "request_id"}` for
every failure, a plain 500 for anything unexpected); the security headers, `Server` and
`X-Request-ID` on the response; and, whatever the outcome, the recorder (series, Prometheus)
and the access line.

One layer instead of six: aiohttp builds the middleware chain anew for every 404 and 405 and
each layer is a coroutine frame on every request, and a `on_response_prepare` hook costs an
extra await per response. Everything that can be computed once (the header list, the
RateLimit-Policy values, route templates, series lookups) is computed once.

And not even as an aiohttp middleware: `install` puts it around every route's handler when the
router freezes (`partial(edge, handler=...)`, no frame of its own), so the application has no
middleware and aiohttp skips its per-request chain lookup and the frame it adds to set
`current_app` (4% of a probe's CPU). Refusal routes (edge.refusals) carry it the same way.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_urldispatcher import UrlDispatcher
from multidict import istr

from edge.app_keys import CLIENT_IP, REQUEST_ID
from edge.client_ip import client_ip
from edge.errors import APIError, error_response
from edge.rate_limit import (
    RATELIMIT,
    RATELIMIT_POLICY,
    RateLimiter,
    rate_limit_headers,
    rate_limit_policy,
    route_class,
)
from edge.refusals import RefusalRoute, kept_headers
from edge.request_id import REQUEST_ID_HEADER, accept_or_make_request_id
from edge.security_headers import SERVER_NAME
from observability.recording import Recorder
from store.database import is_conflict, is_unavailable, is_unstorable
from utils.config import IPNetwork
from utils.logging import current_request_id, get_logger, log_access

log = get_logger(__name__)

# Probes hit every few seconds from every replica: they are counted, not logged.
QUIET_PATHS = frozenset({"/health", "/healthz", "/readyz", "/metrics"})
API_V1_PREFIX = "/api/v1/"
_REQUEST_ID = istr(REQUEST_ID_HEADER)
_SERVER = istr("Server")


def edge_middleware(*, security_headers: Mapping[str, str], limiter: RateLimiter,
                    trusted: Sequence[IPNetwork], recorder: Recorder,
                    api_v1: Middleware | None = None) -> Middleware:
    """The front door, shaped as an aiohttp middleware (`install` puts it around every
    handler); `api_v1` wraps handlers under /api/v1/."""
    fixed = tuple((istr(name), value) for name, value in security_headers.items())
    trusted = tuple(trusted)
    perf_counter = time.perf_counter
    check_now = limiter.check_now
    try_now = limiter.try_now

    def error_for(request: web.Request, exc: Exception) -> web.StreamResponse:
        """The error envelope for what a handler (or the limiter) raised."""
        if isinstance(exc, APIError):
            return error_response(request, exc.status, exc.detail, headers=exc.headers or None,
                                  **exc.extra)
        if isinstance(exc, web.HTTPException):
            if exc.status < 400:
                return exc  # a redirect: aiohttp's own response, with our headers added
            return error_response(request, exc.status, headers=kept_headers(exc))
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
            # From `await request.json()`: the body is not JSON (or not UTF-8).
            return error_response(request, 400, "request body is not valid JSON")
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            # A body that broke off or broke its framing, read by a handler without edge.body.
            return error_response(request, 400, "the body could not be read")
        if is_unstorable(exc):  # text with a NUL: refused alike by both backends
            return error_response(request, 422, "text must not contain NUL characters")
        if is_conflict(exc):  # a concurrent request inserted the same row first
            return error_response(request, 409, "conflicts with a concurrent change, retry",
                                  headers={"Retry-After": "1"})
        if is_unavailable(exc):
            # The database is away: the client should retry, and nothing is broken in code.
            log.warning("database unavailable", path=request.path,
                        error_type=type(exc).__name__)
            return error_response(request, 503, "temporarily unavailable, retry later",
                                  headers={"Retry-After": "5"})
        log.exception("unhandled error", path=request.path, method=request.method,
                      exc_info=exc)
        return error_response(request, 500)

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        request_id = accept_or_make_request_id(request.headers.get(_REQUEST_ID))
        request[REQUEST_ID] = request_id
        token = current_request_id.set(request_id)
        path = request.path
        if trusted:
            client = client_ip(request, trusted)
        else:  # no proxy is believed: the socket peer, as it is
            client = request[CLIENT_IP] = request.remote or "unknown"
        status = 500
        try:
            # The limiter (a 429 costs no authentication work), then the handler.
            try:
                kind = route_class(request.method, path)
                if kind is None:
                    decision = None
                elif check_now is not None:  # a local decision: no await
                    decision = check_now(kind, client)
                elif try_now is None or (decision := try_now(kind, client)) is None:
                    decision = await limiter.check(kind, client)
                match_info = request.match_info
                if decision is not None and not decision.allowed:
                    assert kind is not None
                    response: web.StreamResponse = error_response(
                        request, 429, "rate limit exceeded, retry later",
                        headers=rate_limit_headers(kind, decision))
                elif (refused := match_info.http_exception) is not None:
                    # A 404 or 405: answered here, no handler to call.
                    route = match_info.route
                    response = error_response(
                        request, refused.status, headers=route.kept_headers
                        if isinstance(route, RefusalRoute) else kept_headers(refused))
                else:
                    if api_v1 is not None and path.startswith(API_V1_PREFIX):
                        response = await api_v1(request, handler)
                    else:
                        response = await handler(request)
                    if decision is not None and not response.prepared:
                        assert kind is not None
                        headers = response.headers
                        headers[RATELIMIT_POLICY] = rate_limit_policy(kind, decision)
                        headers[RATELIMIT] = \
                            f'"{kind}";r={decision.remaining};t={decision.reset_after}'
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                response = error_for(request, exc)
            status = response.status
            if not response.prepared:
                headers = response.headers
                for name, value in fixed:
                    if name not in headers:
                        headers[name] = value
                headers[_REQUEST_ID] = request_id
                headers[_SERVER] = SERVER_NAME  # never aiohttp's and Python's versions
            return response
        except asyncio.CancelledError:
            status = 499  # the client went away; counted as a client-side failure
            raise
        finally:
            seconds = perf_counter() - started
            current_request_id.reset(token)
            route_template = recorder.record(request, status, seconds)
            if path not in QUIET_PATHS:
                log_access(request.method, route_template, status, round(seconds * 1000, 2),
                           request_id, client)

    return edge


def around(edge: Middleware) -> Callable[[Handler], Handler]:
    """What runs `edge` around one handler: a partial keeps the handler's name, docstring and
    attributes (its auth policy, its OpenAPI models), which the router's readers look up."""
    def wrap(handler: Handler) -> Handler:
        if isinstance(handler, functools.partial) and handler.func is edge:
            return handler  # already wrapped
        return functools.update_wrapper(functools.partial(edge, handler=handler), handler)

    return wrap


def install(router: UrlDispatcher, edge: Middleware) -> None:
    """Put `edge` around every route's handler when the router freezes (routes added after
    `create_app`, as tests do, included)."""
    wrap = around(edge)
    freeze = router.freeze

    def freeze_with_front_door() -> None:
        for route in router.routes():
            route._handler = wrap(route._handler)  # type: ignore[assignment]
        freeze()

    router.freeze = freeze_with_front_door  # type: ignore[method-assign]
