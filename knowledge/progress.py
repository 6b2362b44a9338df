"""Progress of a long run, passed on at a pace a Discord reply can be edited at."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

ProgressCallback = Callable[[int, int], Awaitable[None] | None]


class ProgressThrottle:
    """Passes `(done, total)` on at most once per `interval` seconds, and always the last one.

    For a Discord reply edited with the progress: `await sync.run(ProgressThrottle(edit))`.
    """

    def __init__(self, callback: ProgressCallback, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._callback = callback
        self._interval = interval
        self._clock = clock
        self._last: float | None = None

    async def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        final = done >= total
        if not final and self._last is not None and now - self._last < self._interval:
            return
        self._last = now
        result = self._callback(done, total)
        if inspect.isawaitable(result):
            await result
