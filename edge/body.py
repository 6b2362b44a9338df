"""Request bodies: one size limit, one content-type rule, one Content-Encoding rule, one JSON
parser for every route; any failure to read a body is a 4xx in the JSON shape."""

from __future__ import annotations

import zlib
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from edge.errors import APIError
from utils.storable import refuse_unstorable

MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024


class BodyTimeout(TimeoutError):
    """Set on a request's payload when its body has not arrived in time (edge.server)."""


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


def content_coding(request: web.Request) -> str:
    """"identity" or "gzip": the Content-Encoding of the body, checked before a byte is read.

    aiohttp's own decompression is off (`auto_decompress=False` in api.py), so a body arrives
    exactly as sent: webhook signatures are checked over those bytes, then `decode_body` inflates
    it within the same size limit. Anything else (br, zstd, deflate, stacked codings) is a 415.
    """
    values = request.headers.getall("Content-Encoding", [])
    coding = ",".join(values).strip().lower()
    if coding in ("", "identity"):
        return "identity"
    if coding in ("gzip", "x-gzip") and len(values) == 1:
        return "gzip"
    raise APIError(415, "Content-Encoding must be gzip or identity")


def decode_body(raw: bytes, coding: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body inflated from `coding`: 413 past `limit` (a small bomb stays small), 400 when
    it is not what the header says."""
    if coding == "identity":
        return raw
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing only
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise APIError(400, "body is not valid gzip") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise APIError(413, f"body larger than {limit} bytes")
    if not inflater.eof or inflater.unused_data:
        raise APIError(400, "body is not valid gzip")
    return body


async def read_raw_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body exactly as sent, refused with 413 as soon as it passes `limit` (never buffered
    whole); any failure to read it is a 400 (a 408 when it stopped arriving)."""
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise APIError(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    except APIError:
        raise
    except BodyTimeout:
        raise APIError(408, "the body did not arrive in time",
                       headers={"Connection": "close"}) from None
    except (HttpProcessingError, RequestPayloadError, ConnectionError):
        raise APIError(400, "the body could not be read") from None
    return b"".join(chunks)


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, decoded from its Content-Encoding (415 before reading when unsupported)."""
    coding = content_coding(request)
    return decode_body(await read_raw_body(request, limit), coding, limit)
