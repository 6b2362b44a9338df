"""Bodies of the operator endpoints, built at most once per interval and then served as they are."""

from __future__ import annotations

import time
from collections.abc import Callable

SNAPSHOT_SECONDS = 1.0


class Snapshots:
    """Response bodies built at most once per `max_age` seconds each (per application)."""

    def __init__(self, max_age: float = SNAPSHOT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._bodies: dict[str, tuple[float, bytes]] = {}

    def get(self, name: str, build: Callable[[], bytes]) -> bytes:
        now = self._clock()
        cached = self._bodies.get(name)
        if cached is not None and now - cached[0] < self.max_age:
            return cached[1]
        body = build()
        self._bodies[name] = (now, body)
        return body
