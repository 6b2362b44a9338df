"""The recorder: every request, whatever its outcome, into the series and Prometheus.

The edge middleware calls it once per request, after the error envelope and the rate limiter
have answered, so it sees their 500s and 429s. Requests are recorded under the route template
(so `/api/v1/guilds/1/config` and `.../2/config` are one series and the number of series is
bounded by the router); what a route records into is looked up once per route, not per request.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractView
from aiohttp.web_urldispatcher import AbstractRoute

from observability.prometheus import Metrics, RouteCounts
from observability.series import UNMATCHED, Observatory, Series, status_class


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if request.match_info.http_exception is not None or resource is None:
        return UNMATCHED
    return f"{request.method} {resource.canonical}"


def webhook_name(request: web.Request) -> str | None:
    if request.path.startswith("/webhooks/") and request.match_info.http_exception is None:
        return request.match_info.route.name
    return None


# Routes whose target is remembered: the router's, and the refusal routes edge.refusals makes
# once; one made per request (a miss on a domain sub-app) could otherwise pile up.
MAX_ROUTES = 1024


class _Target:
    """What one route records into."""

    __slots__ = ("counts", "series", "template", "webhook")

    def __init__(self, template: str, series: Series, webhook: Series | None,
                 counts: RouteCounts) -> None:
        self.template = template
        self.series = series
        self.webhook = webhook
        self.counts = counts


class Recorder:
    """Counts and latencies per route template (and per webhook), for the series and
    Prometheus alike."""

    def __init__(self, observatory: Observatory, metrics: Metrics) -> None:
        self.observatory = observatory
        self.metrics = metrics
        self.enabled = True  # bench/observability.py measures the recorder by turning it off
        self._targets: dict[AbstractRoute, _Target] = {}
        self._unmatched: _Target | None = None  # made on the first miss

    def _target(self, template: str, webhook: str | None) -> _Target:
        return _Target(template, self.observatory.series(template),
                       self.observatory.webhook_series(webhook) if webhook else None,
                       self.metrics.http.route(template))

    def _target_of(self, request: web.Request) -> _Target:
        match_info = request.match_info
        route = match_info.route
        if match_info.http_exception is not None:
            if self._unmatched is None:
                self._unmatched = self._target(UNMATCHED, None)
            if len(self._targets) < MAX_ROUTES:  # refusal routes made once (edge.refusals)
                self._targets[route] = self._unmatched
            return self._unmatched
        target = self._targets.get(route)
        if target is None:
            template = route_template(request)
            handler = getattr(route.handler, "__wrapped__", route.handler)  # the front door's
            if route.method == "*" or (isinstance(handler, type)
                                       and issubclass(handler, AbstractView)):
                # One route for several methods: the template depends on the request.
                return self._target(template, webhook_name(request))
            target = self._targets[route] = self._target(template, webhook_name(request))
        return target

    def record(self, request: web.Request, status: int, seconds: float) -> str:
        """Count one request; returns its route template (for the access line)."""
        target = self._targets.get(request.match_info.route)
        if target is None:
            target = self._target_of(request)
        if self.enabled:
            kind = "2xx" if status < 400 else status_class(status)
            target.series.record_class(kind, seconds)
            if target.webhook is not None:
                target.webhook.record_class(kind, seconds)
            target.counts.observe(kind, seconds)
        return target.template
