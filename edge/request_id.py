"""Request IDs: every request gets one, every response and log record carries it."""

from __future__ import annotations

import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.app_keys import REQUEST_ID
from utils.logging import bind_request_id, reset_request_id

REQUEST_ID_HEADER = "X-Request-ID"

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def accept_or_make_request_id(inbound: str | None) -> str:
    """Keep a client's ID when it is safe to echo and log; otherwise make a new one."""
    if inbound is not None and _VALID_REQUEST_ID.fullmatch(inbound):
        return inbound
    return os.urandom(16).hex()  # 128 random bits, as uuid4 but without its overhead


def request_id_of(request: web.Request) -> str:
    """The request's ID (made on the spot if the middleware has not run, e.g. a 404 early)."""
    request_id = request.get(REQUEST_ID)
    if request_id is None:
        request_id = accept_or_make_request_id(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID] = request_id
    return request_id


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: set the ID before anything can log or fail."""
    tokens = bind_request_id(request_id_of(request))
    try:
        response: web.StreamResponse = await handler(request)
        return response
    finally:
        reset_request_id(tokens)
