"""Fail a test when anything tries to reach beyond 127.0.0.1 (a DNS lookup or a connect).

`NetworkGuard` patches `socket.getaddrinfo` and `socket.socket.connect`/`connect_ex`, which every
client here goes through (asyncio, aiohttp, requests/urllib3, httplib2, asyncpg), in every thread
(google-auth's background lookups run in threads). A blocked attempt raises OSError at once (so
nothing hangs) and is recorded; `assert_clean()` names what was attempted.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "", None})


class NetworkGuard:
    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._lock = threading.Lock()

    def _blocked(self, what: str) -> OSError:
        with self._lock:
            self.attempts.append(what)
        return OSError(f"network guard: {what} is outside 127.0.0.1")

    def _allowed_address(self, address: Any) -> bool:
        if isinstance(address, str | bytes):  # AF_UNIX
            return True
        host = address[0] if isinstance(address, tuple) and address else None
        return host in LOOPBACK_HOSTS or (isinstance(host, str) and host.startswith("127."))

    @contextmanager
    def active(self) -> Iterator[NetworkGuard]:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if not (name in LOOPBACK_HOSTS or (isinstance(name, str) and name.startswith("127."))):
                raise guard._blocked(f"DNS lookup of {name}")
            return real_getaddrinfo(host, *args, **kwargs)

        def connect(sock: socket.socket, address: Any) -> None:
            if not guard._allowed_address(address):
                raise guard._blocked(f"connect to {address}")
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if not guard._allowed_address(address):
                raise guard._blocked(f"connect to {address}")
            return real_connect_ex(sock, address)

        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            socket.getaddrinfo = real_getaddrinfo
            socket.socket.connect = real_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]

    def assert_clean(self) -> None:
        with self._lock:
            attempts = list(self.attempts)
        assert not attempts, f"tried to leave 127.0.0.1: {attempts}"
