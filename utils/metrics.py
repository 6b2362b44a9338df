"""Prometheus metrics, one registry per application (so tests and replicas never share)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds. This API answers health checks in well under a millisecond and webhooks in a few
# milliseconds to tens of milliseconds; a slow database shows up in the upper buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0, 30.0)


class CommandStats:
    """Slash commands run and failed since start, by qualified name (shared by bot and API)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, dict[str, int]] = defaultdict(
            lambda: {"runs": 0, "failures": 0})

    def record(self, command: str, *, failed: bool) -> None:
        with self._lock:
            entry = self._counts[command]
            entry["runs"] += 1
            entry["failures"] += int(failed)

    def command_counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: dict(values) for name, values in self._counts.items()}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_deliveries = Counter(
            "webhook_deliveries_total", "Webhook deliveries by webhook and outcome",
            ["webhook", "outcome"], registry=self.registry)
        self.requests = Counter(
            "http_requests_total", "HTTP requests by route template and status class",
            ["route", "status_class"], registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency by route template",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
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
        self._request_children: dict[tuple[str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def observe_request(self, route: str, status: int, kind: str, seconds: float) -> None:
        """Count one request; the labelled children are looked up once per series."""
        key = (route, kind)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(route, kind)
        counter.inc()
        histogram = self._latency_children.get(route)
        if histogram is None:
            histogram = self._latency_children[route] = self.latency.labels(route)
        histogram.observe(seconds)
