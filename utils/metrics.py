"""Prometheus metrics, one registry per application (so tests and replicas never share)."""

from __future__ import annotations

import threading
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter


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
