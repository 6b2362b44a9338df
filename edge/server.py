"""The HTTP server under the application: what happens before a request reaches a middleware.

aiohttp parses requests and keeps connections itself; this module shapes that part:

- **aiohttp's own refusals** (a request line or header over 16 KiB, a NUL or another invalid
  character in a header, broken chunked framing, bytes that are not HTTP) answer in the JSON
  error shape with `X-Request-ID`, the security headers and no version banner, and log one line
  without a traceback (`EdgeRequestHandler.handle_error`).
- **Slow clients.** A request whose headers are not complete `header_timeout` seconds after its
  first byte (or after the connection opened) is answered 408 and closed; a body still
  incomplete `body_timeout` seconds after its headers fails its read (`edge.body` answers 408)
  and the connection closes; an idle keep-alive connection closes after `keepalive_timeout`.
- **Connections per client.** At most `max_connections_per_ip` open connections per peer
  address (trusted proxies exempt, they carry many clients); the next is answered 503 and
  closed at once.

aiohttp offers no hook for any of this, so `EdgeAppRunner` builds the application's server with
`EdgeServer`, whose protocol is `EdgeRequestHandler` (a `RequestHandler` subclass). aiohttp is
pinned (requirements.txt) and tests/integration/test_edge_server.py pins the behaviour.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from edge.body import BodyTimeout
from edge.client_ip import in_networks
from edge.request_id import REQUEST_ID_HEADER
from edge.security_headers import SERVER_NAME
from utils.config import IPNetwork, Settings
from utils.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class EdgeLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 60.0
    max_connections_per_ip: int = 256
    exempt: tuple[IPNetwork, ...] = ()  # peers without a connection cap (trusted proxies)
    headers: Mapping[str, str] = field(default_factory=dict)  # security headers

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(header_timeout=settings.http_header_timeout_seconds,
                   body_timeout=settings.http_body_timeout_seconds,
                   keepalive_timeout=settings.http_keepalive_seconds,
                   max_connections_per_ip=settings.http_max_connections_per_ip,
                   exempt=settings.trusted_proxies, headers=settings.security_headers())


@dataclass
class EdgeCounts:
    """What the server refused or cut, since start."""

    parser_errors: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    refused_connections: int = 0


def _error_body(status: int, detail: str) -> tuple[str, bytes]:
    request_id = os.urandom(16).hex()
    return request_id, json.dumps({"detail": detail, "request_id": request_id}).encode()


def raw_error(status: int, detail: str, headers: Mapping[str, str]) -> bytes:
    """A complete `Connection: close` response in the contract's shape, written straight to a
    transport (no request object exists yet)."""
    request_id, body = _error_body(status, detail)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
             "Content-Type: application/json; charset=utf-8", f"Content-Length: {len(body)}",
             "Connection: close", f"{REQUEST_ID_HEADER}: {request_id}", f"Server: {SERVER_NAME}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class EdgeRequestHandler(RequestHandler):
    """aiohttp's protocol with JSON refusals, header and body deadlines, a per-IP cap."""

    def __init__(self, manager: EdgeServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = manager
        self._peer: str | None = None
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_started: float | None = None  # loop time of the first byte of a request
        self._last_payload: StreamReader | None = None

    # --- connections ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else None
        if address is not None and not self._edge.admit(address):
            self._refused = True
            stream = cast(asyncio.Transport, transport)
            stream.write(raw_error(503, "too many connections from this address",
                                   {**self._edge.limits.headers, "Retry-After": "5"}))
            stream.close()
            return
        self._peer = address
        super().connection_made(transport)
        self._start_header_clock()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._cancel_header_timer()
        if self._peer is not None:
            self._edge.release(self._peer)
            self._peer = None
        super().connection_lost(exc)

    # --- slow headers -----------------------------------------------------------------------
    # A request's first byte notes the time; one timer per connection checks it. The timer is
    # not re-armed per request (a timer set and cancelled on every request of a keep-alive
    # connection cost 5% of a probe's CPU): when it fires for a request that has since
    # finished its headers it sees a later one, or none, and waits for that one's deadline.
    def data_received(self, data: bytes) -> None:
        if self._header_started is None and data and (
                self._last_payload is None or self._last_payload.is_eof()):
            self._start_header_clock()  # the first byte of a new request
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # headers complete: the body has its own deadline
            self._header_started = None
            self._last_payload = self._messages[-1][1] if self._messages else None

    def _start_header_clock(self) -> None:
        self._header_started = self._loop.time()
        if self._header_timer is None:
            self._header_timer = self._loop.call_at(
                self._header_started + self._edge.limits.header_timeout, self._header_deadline)

    def _cancel_header_timer(self) -> None:
        self._header_started = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._header_started is None:
            return  # no request is waiting for its headers: the next one's first byte re-arms
        due = self._header_started + self._edge.limits.header_timeout
        if self._loop.time() < due:  # a later request than the one the timer was set for
            self._header_timer = self._loop.call_at(due, self._header_deadline)
            return
        transport = self.transport
        if transport is None:
            return
        if self._request_in_progress or self._messages:
            # A response is being written on this connection: never interleave; look again.
            self._header_timer = self._loop.call_at(
                self._loop.time() + self._edge.limits.header_timeout, self._header_deadline)
            return
        self._edge.counts.header_timeouts += 1
        log.info("connection closed: request headers incomplete",
                 seconds=self._edge.limits.header_timeout)
        transport.write(raw_error(408, "request headers not received in time",
                                       self._edge.limits.headers))
        self.force_close()

    # --- aiohttp's own error answers ----------------------------------------------------------
    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a started response cannot be replaced
            raise ConnectionError("response already started; cannot send an error")
        if status >= 500:
            # A failure past every middleware (edge.errors catches what handlers raise).
            log.error("unhandled error outside the application", status=status,
                      error_type=type(exc).__name__ if exc else None, exc_info=exc)
            detail = HTTPStatus(status).phrase
        else:
            self._edge.counts.parser_errors += 1
            if isinstance(exc, LineTooLong):
                status, detail = 431, "request line or header field too large"
            else:
                detail = "malformed HTTP request"
            if not isinstance(exc, BadHttpMethod) or self._request_count > 1:
                log.info("request refused by the HTTP parser", status=status,
                         error_type=type(exc).__name__ if exc else None)
        request_id, body = _error_body(status, detail)
        response = web.Response(status=status, body=body, content_type="application/json",
                                headers={**self._edge.limits.headers,
                                         REQUEST_ID_HEADER: request_id, "Server": SERVER_NAME})
        response.force_close()
        return response


class EdgeServer(web.Server):
    """aiohttp's low-level server making `EdgeRequestHandler`s, with the per-IP counts."""

    def __init__(self, handler: Any, *, limits: EdgeLimits, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", limits.keepalive_timeout)
        # After answering without reading a body, aiohttp drains it this long, then closes.
        kwargs.setdefault("lingering_time", min(10.0, limits.body_timeout))
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.counts = EdgeCounts()
        self._open: dict[str, int] = {}
        self._capped: set[str] = set()
        make_request = self.request_factory

        def request_factory(message: Any, payload: StreamReader, protocol: RequestHandler,
                            writer: Any, task: asyncio.Task[None]) -> web.BaseRequest:
            self._watch_body(payload)
            return make_request(message, payload, protocol, writer, task)

        self.request_factory = request_factory

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, loop=self._loop, **self._kwargs)

    def admit(self, address: str) -> bool:
        """Count a new connection from `address`; False when it is one too many."""
        count = self._open.get(address, 0)
        if count >= self.limits.max_connections_per_ip and not in_networks(
                address, self.limits.exempt):
            self.counts.refused_connections += 1
            if address not in self._capped:  # one line per address reaching the cap
                self._capped.add(address)
                log.warning("connections refused: per-address cap reached", client_ip=address,
                            cap=self.limits.max_connections_per_ip)
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count <= 0:
            self._open.pop(address, None)
        else:
            self._open[address] = count
        if count < self.limits.max_connections_per_ip:
            self._capped.discard(address)

    def open_connections(self, address: str) -> int:
        return self._open.get(address, 0)

    def _watch_body(self, payload: StreamReader) -> None:
        """Fail the body's read when it has not arrived `body_timeout` seconds from now."""
        if payload.is_eof():
            return

        def expire() -> None:
            if not payload.is_eof() and payload.exception() is None:
                self.counts.body_timeouts += 1
                log.info("request body incomplete: read failed",
                         seconds=self.limits.body_timeout)
                payload.set_exception(BodyTimeout())

        handle = self._loop.call_later(self.limits.body_timeout, expire)
        payload.on_eof(handle.cancel)


class EdgeAppRunner(web.AppRunner):
    """`web.AppRunner` serving the application through `EdgeServer`."""

    def __init__(self, app: web.Application, *, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # app start-up, freeze, handler arguments
        return EdgeServer(plain.request_handler, limits=self.limits,
                          request_factory=plain.request_factory,
                          handler_cancellation=plain.handler_cancellation,
                          loop=asyncio.get_running_loop(), **plain._kwargs)
