"""One error shape for every failure: `{"detail": "...", "request_id": "..."}`.

The edge middleware (`edge.front_door`) turns aiohttp's HTTP exceptions and anything
unexpected into that shape; an unexpected exception is logged with its traceback and answered
with a plain 500, so no exception text or internal name reaches a client.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from edge.request_id import request_id_of

_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def error_response(
    request: web.Request,
    status: int,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error response in the contract's shape."""
    body = {
        "detail": detail or _PHRASES.get(status) or HTTPStatus(status).phrase,
        "request_id": request_id_of(request),
        **extra,
    }
    return web.json_response(body, status=status, headers=headers)


class APIError(Exception):
    """Raise from a handler to answer with a JSON error of any status.

    `detail` is shown to the client, so it must never contain exception text.
    """

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
