"""What /api/v1 handlers read from a request: ids in the path, pagination, JSON bodies."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from edge.auth import Principal
from edge.body import parse_json_body, read_body, require_json
from edge.errors import APIError
from utils.ids import parse_ascii_int, parse_discord_id

MAX_PAGE = 100
MAX_OFFSET = 1_000_000
M = TypeVar("M", bound=BaseModel)


def path_id(request: web.Request, name: str) -> int:
    """A Discord id from the path: ASCII digits only, below 2**63, else 422."""
    discord_id = parse_discord_id(request.match_info.get(name, ""))
    if discord_id is None:
        raise APIError(422, f"{name} must be a Discord id")
    return discord_id


def _query_int(request: web.Request, name: str, default: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    return parse_ascii_int(text)  # int() would take "５" or " 5": ASCII digits and nothing else


def pagination(request: web.Request) -> tuple[int, int]:
    limit = _query_int(request, "limit", 20)
    offset = _query_int(request, "offset", 0)
    if limit is None or offset is None or not 1 <= limit <= MAX_PAGE \
            or not 0 <= offset <= MAX_OFFSET:
        raise APIError(422, f"limit must be 1..{MAX_PAGE} and offset 0..{MAX_OFFSET}")
    return limit, offset


def page(items: list[Any], total: int, limit: int, offset: int) -> web.Response:
    return web.json_response({"items": items, "total": total, "limit": limit, "offset": offset})


async def read_model(request: web.Request, model: type[M]) -> M:
    require_json(request)
    return parse_json_body(model, await read_body(request))  # 1 MiB (413), gzip or identity


def actor_of(principal: Principal) -> str:
    return principal.subject or f"key:{principal.key_prefix}"
