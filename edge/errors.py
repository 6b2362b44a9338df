"""One error shape for every failure: `{"detail": "...", "request_id": "..."}`.

The error middleware turns aiohttp's HTTP exceptions and anything unexpected into that shape;
an unexpected exception is logged with its traceback and answered with a plain 500, so no
exception text or internal name reaches a client.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ConfigDict, Field

from edge.request_id import request_id_of
from store.database import is_conflict, is_unavailable, is_unstorable
from utils.logging import get_logger

log = get_logger(__name__)


class FieldError(BaseModel):
    loc: str = Field(description="the failing field, dotted (never its value)")
    msg: str


class ErrorBody(BaseModel):
    """Every error answer: `error_response` builds it; the OpenAPI document shows it."""

    model_config = ConfigDict(extra="allow")

    detail: str
    request_id: str
    errors: list[FieldError] | None = Field(default=None, description="422: failing fields")


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
        "detail": detail or HTTPStatus(status).phrase,
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


_PASSTHROUGH_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except APIError as exc:
        return error_response(request, exc.status, exc.detail, headers=dict(exc.headers),
                              **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kept = {name: exc.headers[name] for name in _PASSTHROUGH_HEADERS if name in exc.headers}
        return error_response(request, exc.status, headers=kept)
    except (json.JSONDecodeError, UnicodeDecodeError):
        # From `await request.json()`: the client sent a body that is not JSON (or not UTF-8).
        return error_response(request, 400, "request body is not valid JSON")
    except (HttpProcessingError, RequestPayloadError):
        # A body that broke off or broke its framing, read by a handler without edge.body.
        return error_response(request, 400, "the body could not be read")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if is_unstorable(exc):  # text with a NUL: refused alike by both backends
            return error_response(request, 422, "text must not contain NUL characters")
        if is_conflict(exc):  # a concurrent request inserted the same row first
            return error_response(request, 409, "conflicts with a concurrent change, retry",
                                  headers={"Retry-After": "1"})
        if is_unavailable(exc):
            # The database is away: the client should retry, and nothing is broken in code.
            log.warning("database unavailable", path=request.path, error_type=type(exc).__name__)
            return error_response(request, 503, "temporarily unavailable, retry later",
                                  headers={"Retry-After": "5"})
        log.exception("unhandled error", path=request.path, method=request.method)
        return error_response(request, 500)
    return response
