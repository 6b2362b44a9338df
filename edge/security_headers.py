"""Security headers, `Server` and the request ID: on every response, errors and 404s included.

The edge middleware (`edge.front_door`) adds them to every response it returns, computed once
from the settings. `response_headers_hook` does the same as an `on_response_prepare` hook, for
an application whose responses do not all pass that middleware (it costs an await per response,
so the control API does not install it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from edge.request_id import REQUEST_ID_HEADER, request_id_of

SERVER_NAME = "community-bot"

ResponsePrepareHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def response_headers_hook(headers: Mapping[str, str]) -> ResponsePrepareHook:
    fixed = dict(headers)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in fixed.items():
            response.headers.setdefault(name, value)
        response.headers[REQUEST_ID_HEADER] = request_id_of(request)
        # aiohttp would otherwise announce its own and Python's version to every client.
        response.headers["Server"] = SERVER_NAME

    return add_headers
