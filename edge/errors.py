"""One error shape for every failure: `{"detail": "...", "request_id": "..."}`.

The edge middleware (`edge.front_door`) turns aiohttp's HTTP exceptions and anything
unexpected into that shape; an unexpected exception is logged with its traceback and answered
with a plain 500, so no exception text or internal name reaches a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge.request_id import request_id_of

_PHRASES = {status.value: status.phrase for status in HTTPStatus}


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
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error response in the contract's shape."""
    detail = detail or _PHRASES.get(status) or HTTPStatus(status).phrase
    request_id = request_id_of(request)
    if extra:
        return web.json_response({"detail": detail, "request_id": request_id, **extra},
                                 status=status, headers=headers)
    # The common case, without a JSON encoder: the detail's encoding is kept (a bounded set
    # of fixed texts), and a request ID is made of [A-Za-z0-9._-] only, so it needs none.
    head = _HEADS.get(detail)
    if head is None:
        head = b'{"detail": ' + json.dumps(detail).encode() + b', "request_id": "'
        if len(_HEADS) < _MAX_HEADS:
            _HEADS[detail] = head
    return web.Response(body=head + request_id.encode() + b'"}', status=status,
                        headers=headers, content_type="application/json", charset="utf-8")


_HEADS: dict[str, bytes] = {}
_MAX_HEADS = 512


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
