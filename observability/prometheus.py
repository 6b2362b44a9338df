"""Prometheus metrics, one registry per application (so tests and replicas never share)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# Seconds. This API answers health checks in well under a millisecond and webhooks in a few
# milliseconds to tens of milliseconds; a slow database shows up in the upper buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_deliveries = Counter(
            "webhook_deliveries_total", "Webhook deliveries by webhook and outcome",
            ["webhook", "outcome"], registry=self.registry)
        self.http = RequestCollector()
        self.registry.register(self.http)
        self.rate_limit_refusals = Gauge(
            "rate_limit_refusals", "Requests refused by the rate limiter since start",
            registry=self.registry)
        self.rate_limit_backend_errors = Gauge(
            "rate_limit_backend_errors", "Rate limiter backend failures (failed open)",
            registry=self.registry)
        self.gateway_latency = Gauge(
            "discord_gateway_latency_seconds", "Discord heartbeat latency (NaN when off)",
            registry=self.registry)
        self.guilds = Gauge("discord_guilds", "Guilds the bot is in", registry=self.registry)
        self.command_runs = Gauge("discord_command_runs", "Slash command runs since start",
                                  ["command", "outcome"], registry=self.registry)
        self.outbox = Gauge("outbox_entries", "Outbox entries by status", ["status"],
                            registry=self.registry)
        self.redis_breaker_state = Gauge(
            "redis_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open "
            "(NaN without Redis)", registry=self.registry)

    def observe_request(self, route: str, status: int, kind: str, seconds: float) -> None:
        self.http.route(route).observe(kind, seconds)


class RouteCounts:
    """One route's requests by status class, latency bucket counts (then +Inf) and sum."""

    __slots__ = ("buckets", "by_class", "sum")

    def __init__(self) -> None:
        self.by_class: defaultdict[str, int] = defaultdict(int)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, kind: str, seconds: float) -> None:
        self.by_class[kind] += 1
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds


class RequestCollector(Collector):
    """http_requests_total and http_request_duration_seconds, kept as plain counts.

    A route's counts are looked up once (the recorder keeps them); one request then costs a
    bisect and three additions, with no lock (the event loop is one thread). The Prometheus
    families are built only when /metrics is scraped.
    """

    def __init__(self) -> None:
        self._routes: dict[str, RouteCounts] = {}

    def route(self, route: str) -> RouteCounts:
        counts = self._routes.get(route)
        if counts is None:
            counts = self._routes[route] = RouteCounts()
        return counts

    def observe(self, route: str, kind: str, seconds: float) -> None:
        self.route(route).observe(kind, seconds)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("http_requests", "HTTP requests by route template and "
                                       "status class", labels=["route", "status_class"])
        routes = sorted(self._routes.items())
        for route, counts in routes:
            for kind, count in sorted(counts.by_class.items()):
                requests.add_metric([route, kind], count)
        yield requests
        latency = HistogramMetricFamily("http_request_duration_seconds",
                                        "HTTP request latency by route template",
                                        labels=["route"])
        for route, counts in routes:
            if not any(counts.buckets):
                continue
            cumulative, running = [], 0
            for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts.buckets,
                                    strict=True):
                running += count
                cumulative.append((bound, running))
            latency.add_metric([route], cumulative, sum_value=counts.sum)
        yield latency
