"""Prometheus metrics, one registry per application (so tests and replicas never share)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_deliveries = Counter(
            "webhook_deliveries_total", "Webhook deliveries by webhook and outcome",
            ["webhook", "outcome"], registry=self.registry)
