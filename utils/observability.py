"""What operators see: per-route and per-webhook counts, success rates and latency quantiles.

One middleware records every request, the ones that raise (as 5xx) and the ones the rate
limiter refuses (429) included, under its route template (so `/api/v1/guilds/1/config` and
`.../2/config` are one series and the number of series is bounded by the router). Latencies go
into DDSketches (relative error 1%, at most 2048 bins each, so memory per series is bounded
whatever the traffic): one since start and a rolling 5-minute window made of ten 30-second
slices. The same middleware feeds Prometheus and writes one access-log line per request.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from ddsketch import LogCollapsingLowestDenseDDSketch
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from utils.client_ip import IPNetwork, client_ip, in_networks
from utils.errors import APIError
from utils.logging import get_logger
from utils.request_id import request_id_of

access_log = get_logger("access")

RELATIVE_ACCURACY = 0.01
BIN_LIMIT = 2048
WINDOW_SECONDS = 300
SLICE_SECONDS = 30
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
STATUS_CLASSES = ("2xx", "4xx", "429", "5xx")
UNMATCHED = "(unmatched)"
QUIET_PATHS = frozenset({"/health", "/healthz", "/readyz", "/metrics"})

Clock = Callable[[], float]


def status_class(status: int) -> str:
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    return "4xx" if status >= 400 else "2xx"


def new_sketch() -> LogCollapsingLowestDenseDDSketch:
    return LogCollapsingLowestDenseDDSketch(RELATIVE_ACCURACY, bin_limit=BIN_LIMIT)


@dataclass
class Slice:
    start: float
    sketch: LogCollapsingLowestDenseDDSketch = field(default_factory=new_sketch)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_CLASSES, 0))


def _summary(counts: dict[str, int], sketch: LogCollapsingLowestDenseDDSketch) -> dict[str, Any]:
    total = sum(counts.values())
    latency: dict[str, float | None] = dict.fromkeys(QUANTILES)
    if sketch.count:
        for name, q in QUANTILES.items():
            value = sketch.get_quantile_value(q)
            latency[name] = round(value * 1000, 3) if value is not None else None
    return {"requests": total, "counts": dict(counts),
            "success_rate": round(1 - counts["5xx"] / total, 6) if total else None,
            "latency_ms": latency}


def _merged(parts: list[Slice]) -> tuple[dict[str, int], LogCollapsingLowestDenseDDSketch]:
    counts = dict.fromkeys(STATUS_CLASSES, 0)
    sketch = new_sketch()
    for part in parts:
        sketch.merge(part.sketch)
        for kind, count in part.counts.items():
            counts[kind] += count
    return counts, sketch


class Series:
    """Counts and latencies of one route (or webhook): since start and the last 5 minutes.

    A sample goes into the current slice only; a slice leaving the window is folded into
    `retired`, so "since start" is `retired` plus the live slices, and each sample costs one
    sketch insertion.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.retired = Slice(start=clock())
        self.slices: deque[Slice] = deque()

    def _expire(self, now: float) -> None:
        # A slice leaves once every sample in it is older than the window.
        while self.slices and self.slices[0].start + SLICE_SECONDS <= now - WINDOW_SECONDS:
            old = self.slices.popleft()
            self.retired.sketch.merge(old.sketch)
            for kind, count in old.counts.items():
                self.retired.counts[kind] += count

    def record(self, status: int, seconds: float) -> None:
        now = self._clock()
        start = now - now % SLICE_SECONDS
        if not self.slices or self.slices[-1].start != start:
            self._expire(now)
            self.slices.append(Slice(start=start))
        current = self.slices[-1]
        current.counts[status_class(status)] += 1
        current.sketch.add(max(seconds, 1e-6))

    def report(self) -> dict[str, Any]:
        self._expire(self._clock())
        live = list(self.slices)
        return {"last_5_minutes": _summary(*_merged(live)),
                "since_start": _summary(*_merged([self.retired, *live]))}


class Observatory:
    """All series of one application."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.routes: dict[str, Series] = {}
        self.webhooks: dict[str, Series] = {}

    def record(self, route: str, webhook: str | None, status: int, seconds: float) -> None:
        self._series(self.routes, route).record(status, seconds)
        if webhook is not None:
            self._series(self.webhooks, webhook).record(status, seconds)

    def _series(self, table: dict[str, Series], name: str) -> Series:
        series = table.get(name)
        if series is None:  # not setdefault: building a Series (and its sketch) costs ~3 us
            series = table[name] = Series(self._clock)
        return series

    def report(self) -> dict[str, Any]:
        return {
            "uptime_seconds": round(self._clock() - self.started, 3),
            "latency_relative_error": RELATIVE_ACCURACY,
            "routes": {name: series.report() for name, series in sorted(self.routes.items())},
            "webhooks": {name: series.report()
                         for name, series in sorted(self.webhooks.items())},
        }


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


def observability_middleware(observatory: Observatory, metrics: Any) -> Middleware:
    """Counts and latencies. Outside the error and rate-limit middlewares, so it sees their
    500s and 429s."""

    def record(request: web.Request, status: int, seconds: float) -> None:
        route = route_template(request)
        observatory.record(route, webhook_name(request), status, seconds)
        metrics.observe_request(route, status, status_class(status), seconds)

    recorder = outcome_middleware(record)
    recorder.is_recorder = True  # type: ignore[attr-defined]  # bench/observability.py finds it
    return recorder


def access_log_middleware(trusted: tuple[IPNetwork, ...]) -> Middleware:
    """One structured line per request (through the masking pipeline). Probes hit every few
    seconds from every replica: they are counted, not logged."""

    def log_line(request: web.Request, status: int, seconds: float) -> None:
        if request.path not in QUIET_PATHS:
            access_log.info("request", method=request.method, route=route_template(request),
                            status=status, ms=round(seconds * 1000, 2),
                            request_id=request_id_of(request),
                            client_ip=client_ip(request, trusted))

    return outcome_middleware(log_line)


# --- Operator endpoints ----------------------------------------------------------------------


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


def prometheus_response(registry: Any) -> web.Response:
    response = web.Response(body=generate_latest(registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response
