"""Request bodies: one size limit, one content-type rule, one JSON parser for every route."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from edge.errors import APIError
from utils.storable import refuse_unstorable

MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024


M = TypeVar("M", bound=BaseModel)


class RequestBody(BaseModel):
    """Base of the JSON bodies of /api/v1: unknown fields refused, no text PostgreSQL cannot
    store (NUL) anywhere, so both backends give the same 422."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return refuse_unstorable(data)
MAX_FIELD_ERRORS = 20


def parse_json_body(model: type[M], body: bytes) -> M:
    """Validate a JSON body with `model`: 400 when it is not UTF-8 JSON, 422 with the failing
    fields (never their values) when it does not fit."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(400, "body is not UTF-8") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise APIError(400, "body is not valid JSON") from None
        errors = [{"loc": ".".join(str(part) for part in error["loc"]) or "body",
                   "msg": error["msg"]} for error in exc.errors()[:MAX_FIELD_ERRORS]]
        raise APIError(422, "body failed validation", errors=errors) from None


def require_json(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise APIError(415, "Content-Type must be application/json")


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` (never buffered whole)."""
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
