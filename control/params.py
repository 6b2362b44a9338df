"""What handlers read from a request, declared once: the OpenAPI document is built from the
same declarations (control/openapi.py), so documentation and validation cannot drift.

- `@query(Model)` validates the query string with `Model` (422 naming the fields) and passes the
  result to the handler: `async def handler(request, query: Model)`.
- `@body(Model)` reads the JSON body (`edge.body`: 1 MiB, gzip or identity, 415 otherwise) and
  validates it with `Model`: `async def handler(request, change: Model)`.
- `@responds(status, Model)` documents a success answer; `reply(model)` sends one.
- `path_id` reads a Discord id from the path (ASCII digits only, `DISCORD_ID_PATTERN`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from edge.auth import Principal
from edge.body import MAX_FIELD_ERRORS, parse_json_body, read_body, require_json
from edge.errors import APIError
from utils.ids import parse_ascii_int, parse_discord_id

MAX_PAGE = 100
MAX_OFFSET = 1_000_000
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

QUERY_ATTRIBUTE = "__request_query__"
BODY_ATTRIBUTE = "__request_body__"
RESPONSES_ATTRIBUTE = "__responses__"


def path_id(request: web.Request, name: str) -> int:
    """A Discord id from the path: ASCII digits only, below 2**63, else 422."""
    discord_id = parse_discord_id(request.match_info.get(name, ""))
    if discord_id is None:
        raise APIError(422, f"{name} must be a Discord id")
    return discord_id


def _ascii_number(value: Any) -> Any:
    """Query numbers: int() would take "５" or " 5"; ASCII digits and nothing else."""
    if isinstance(value, str):
        parsed = parse_ascii_int(value)
        if parsed is None:
            raise ValueError("must be a number written in ASCII digits")
        return parsed
    return value


QueryNumber = Annotated[int, BeforeValidator(_ascii_number)]


class QueryModel(BaseModel):
    """Base of query-string models: strings in, unknown parameters ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PageQuery(QueryModel):
    limit: QueryNumber = Field(default=20, ge=1, le=MAX_PAGE, description="items per page")
    offset: QueryNumber = Field(default=0, ge=0, le=MAX_OFFSET, description="items to skip")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


def _validation_error(exc: ValidationError, where: str) -> APIError:
    errors = [{"loc": ".".join(str(part) for part in error["loc"]) or where,
               "msg": error["msg"]} for error in exc.errors()[:MAX_FIELD_ERRORS]]
    return APIError(422, f"{where} failed validation", errors=errors)


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate({name: request.query[name] for name in request.query})
    except ValidationError as exc:
        raise _validation_error(exc, "query") from None


async def read_model(request: web.Request, model: type[M]) -> M:
    require_json(request)
    return parse_json_body(model, await read_body(request))  # 1 MiB (413), gzip or identity


def query(model: type[M]) -> Callable[[Callable[[web.Request, M], Awaitable[web.StreamResponse]]],
                                      Handler]:
    """Validate the query string with `model` and hand the result to the handler."""

    def decorate(handler: Callable[[web.Request, M], Awaitable[web.StreamResponse]]) -> Handler:
        @functools.wraps(handler)
        async def with_query(request: web.Request) -> web.StreamResponse:
            return await handler(request, parse_query(request, model))

        setattr(with_query, QUERY_ATTRIBUTE, model)
        return with_query

    return decorate


def body(model: type[M]) -> Callable[[Callable[[web.Request, M], Awaitable[web.StreamResponse]]],
                                     Handler]:
    """Read and validate the JSON body with `model` and hand the result to the handler."""

    def decorate(handler: Callable[[web.Request, M], Awaitable[web.StreamResponse]]) -> Handler:
        @functools.wraps(handler)
        async def with_body(request: web.Request) -> web.StreamResponse:
            return await handler(request, await read_model(request, model))

        setattr(with_body, BODY_ATTRIBUTE, model)
        return with_body

    return decorate


F = TypeVar("F", bound=Callable[..., Any])


def responds(status: int, model: Any = None, description: str = "") -> Callable[[F], F]:
    """Document a success answer of the handler (`model`: a pydantic model or type, or None)."""

    def decorate(handler: F) -> F:
        answers = dict(getattr(handler, RESPONSES_ATTRIBUTE, {}))
        answers[status] = (model, description)
        setattr(handler, RESPONSES_ATTRIBUTE, answers)
        return handler

    return decorate


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """Send a documented answer: the model, as JSON."""
    return web.json_response(model.model_dump(mode="json", by_alias=True), status=status)


def actor_of(principal: Principal) -> str:
    return principal.subject or f"key:{principal.key_prefix}"
