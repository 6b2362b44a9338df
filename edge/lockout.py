"""Addresses that keep failing authentication are refused for a while (429)."""

from __future__ import annotations

import time
from collections.abc import Callable

# Ten failures within a minute lock an address out for five minutes.
FAILURE_THRESHOLD = 10
FAILURE_WINDOW_SECONDS = 60.0
LOCKOUT_SECONDS = 300.0
MAX_TRACKED_ADDRESSES = 50_000


class FailureTracker:
    """Recent authentication failures per address, and the addresses locked out."""

    def __init__(self, *, threshold: int = FAILURE_THRESHOLD,
                 window: float = FAILURE_WINDOW_SECONDS, lockout: float = LOCKOUT_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_TRACKED_ADDRESSES) -> None:
        self._threshold, self._window, self._lockout = threshold, window, lockout
        self._clock = clock
        self._max_entries = max_entries
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked_for(self, address: str) -> int:
        """Whole seconds this address stays locked out (0: not locked)."""
        until = self._locked_until.get(address, 0.0)
        remaining = until - self._clock()
        return max(0, int(remaining + 0.999))

    def fail(self, address: str) -> None:
        now = self._clock()
        if len(self._failures) >= self._max_entries:
            self._failures.clear()  # bounded memory under a flood of addresses
        recent = [t for t in self._failures.get(address, []) if now - t < self._window]
        recent.append(now)
        self._failures[address] = recent
        if len(recent) >= self._threshold:
            self._locked_until[address] = now + self._lockout
            self._failures.pop(address, None)
