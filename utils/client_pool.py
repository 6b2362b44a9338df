"""A few blocking clients shared by worker threads, each used by one thread at a time.

Google's REST transport (a `requests` session and credentials that refresh themselves) is not
documented as safe to share between threads, so a client serves one request at a time; a small
pool lets several requests run at once without sharing one. Clients are built on demand, up to
`size`, outside the pool's lock (a slow first build does not hold up a client already made).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

ClientT = TypeVar("ClientT")


class NoClientInTime(TimeoutError):
    """Every client stayed busy until the caller's deadline."""


class ClientPool(Generic[ClientT]):
    def __init__(self, factory: Callable[[], ClientT], size: int) -> None:
        if size < 1:
            raise ValueError("a pool holds at least one client")
        self._factory = factory
        self._size = size
        self._idle: list[ClientT] = []
        self._made = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def lease(self, deadline: float) -> Iterator[ClientT]:
        """A client for one request; NoClientInTime when none is free by `deadline`
        (`time.monotonic()` seconds)."""
        client = self._take(deadline)
        try:
            yield client
        finally:
            with self._changed:
                self._idle.append(client)
                self._changed.notify()

    def _take(self, deadline: float) -> ClientT:
        with self._changed:
            while not self._idle and self._made >= self._size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._changed.wait(remaining):
                    raise NoClientInTime
            if self._idle:
                return self._idle.pop()
            self._made += 1
        try:
            return self._factory()
        except BaseException:
            with self._changed:
                self._made -= 1
                self._changed.notify()
            raise

    def drain(self) -> list[ClientT]:
        """Take every idle client out, to be closed; later leases build new ones."""
        with self._changed:
            idle, self._idle = self._idle, []
            self._made -= len(idle)
            self._changed.notify_all()
            return idle
