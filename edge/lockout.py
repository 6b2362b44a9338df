"""Addresses that keep failing authentication are refused for a while (429).

Both tables are bounded. Failure counts are kept in order of each address's latest failure:
expired ones are dropped first, then the longest quiet, so a flood of new addresses never wipes
the counts of one that keeps failing. Lockouts are dropped once over; only more than the bound
active at once evicts the one ending soonest.
"""

from __future__ import annotations

import time
from collections import OrderedDict
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
        # Oldest latest-failure first; lockouts in the order they end (the lockout is fixed).
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._locked_until: OrderedDict[str, float] = OrderedDict()

    def locked_for(self, address: str) -> int:
        """Whole seconds this address stays locked out (0: not locked)."""
        until = self._locked_until.get(address, 0.0)
        remaining = until - self._clock()
        return max(0, int(remaining + 0.999))

    def fail(self, address: str) -> None:
        now = self._clock()
        recent = [t for t in self._failures.pop(address, []) if now - t < self._window]
        recent.append(now)
        if len(recent) >= self._threshold:
            self._lock(address, now)
            return
        self._failures[address] = recent  # now the most recent: evicted last
        self._prune_failures(now)

    def tracked(self) -> tuple[int, int]:
        """How many addresses have failure counts, and how many are locked out."""
        return len(self._failures), len(self._locked_until)

    def _lock(self, address: str, now: float) -> None:
        self._locked_until.pop(address, None)
        self._locked_until[address] = now + self._lockout
        while self._locked_until and next(iter(self._locked_until.values())) <= now:
            self._locked_until.popitem(last=False)  # over: nothing to keep
        while len(self._locked_until) > self._max_entries:
            self._locked_until.popitem(last=False)  # the one ending soonest

    def _prune_failures(self, now: float) -> None:
        while self._failures and now - next(iter(self._failures.values()))[-1] >= self._window:
            self._failures.popitem(last=False)  # its failures have all aged out
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)  # the address quiet the longest
