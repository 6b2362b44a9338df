"""Slash commands run and failed since start: the bot records, the API reports."""

from __future__ import annotations

import threading
from collections import defaultdict


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
