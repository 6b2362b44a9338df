"""Request IDs: every request gets one, every response and log record carries it.

The edge middleware (`edge.front_door`) sets it first thing; `request_id_of` serves anyone who
answers before that (a response made outside the middleware).
"""

from __future__ import annotations

import random
import re

from aiohttp import web

from edge.app_keys import REQUEST_ID

REQUEST_ID_HEADER = "X-Request-ID"

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}").fullmatch
# An ID correlates records; it is no secret, so a fast generator seeded from the OS will do.
_random_bytes = random.Random().randbytes  # noqa: S311 (seeded from os.urandom)


def accept_or_make_request_id(inbound: str | None) -> str:
    """Keep a client's ID when it is safe to echo and log; otherwise make a new one."""
    if inbound is not None and _VALID_REQUEST_ID(inbound):
        return inbound
    # 128 random bits as 32 hex digits, as uuid4 but without its overhead (randbytes().hex()
    # is a third of the cost of formatting getrandbits(128)).
    return _random_bytes(16).hex()


def request_id_of(request: web.Request) -> str:
    """The request's ID (made on the spot if the middleware has not run)."""
    request_id = request.get(REQUEST_ID)
    if request_id is None:
        request_id = accept_or_make_request_id(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID] = request_id
    return request_id
