"""Cheap refusals for what the router cannot serve: 404 and 405.

aiohttp answers a miss by building an `HTTPNotFound` (a whole Response), a `SystemRoute`, and -
because that route is new every time - the middleware chain anew: together about as much CPU as
a request served. Here the router's own walk is kept, and a miss returns match info built from
parts made once (the exception and a route per status and allowed-method set), so aiohttp reuses
its cached middleware chain; the edge middleware answers it with the JSON error shape without
calling a handler. A scanner then costs us little more than a health check.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import (
    AbstractRoute,
    MatchInfoError,
    UrlDispatcher,
    UrlMappingMatchInfo,
)
from yarl import URL

_PASSTHROUGH_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")
_MAX_NOT_ALLOWED = 64  # distinct (method, allowed set) routes kept; beyond, made per request


def kept_headers(exception: web.HTTPException) -> dict[str, str]:
    """The headers of an HTTP exception that its JSON error response keeps."""
    return {name: exception.headers[name] for name in _PASSTHROUGH_HEADERS
            if name in exception.headers}


class RefusalRoute(AbstractRoute):
    """Like aiohttp's SystemRoute (its handler raises the exception), but made once and reused,
    with the headers its JSON answer keeps worked out once."""

    def __init__(self, http_exception: web.HTTPException,
                 around: Callable[[Handler], Handler] | None = None) -> None:
        super().__init__(hdrs.METH_ANY, self._handle)
        if around is not None:  # the front door, which answers it without calling `_handle`
            self._handler = around(self._handler)  # type: ignore[assignment]
        self.http_exception = http_exception
        self.kept_headers = kept_headers(http_exception)

    def url_for(self, *args: str, **kwargs: str) -> URL:
        raise RuntimeError(".url_for() is not allowed for a refusal")

    @property
    def name(self) -> str | None:
        return None

    def get_info(self) -> dict[str, object]:  # type: ignore[override]
        return {"http_exception": self.http_exception}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise self.http_exception


class Refused(MatchInfoError):
    """Match info for a refusal, from a prebuilt route (no new exception, no new route)."""

    __slots__ = ()

    def __init__(self, route: RefusalRoute) -> None:  # skips MatchInfoError's route building
        self._exception = route.http_exception
        UrlMappingMatchInfo.__init__(self, {}, route)


def install(router: UrlDispatcher, around: Callable[[Handler], Handler] | None = None) -> None:
    """Make `router` answer misses with prebuilt refusals (aiohttp's walk is otherwise kept);
    `around` wraps their handler as the router's routes are (edge.front_door)."""
    base_resolve = router.resolve
    not_found = RefusalRoute(web.HTTPNotFound(), around)
    not_allowed: dict[tuple[str, frozenset[str]], RefusalRoute] = {}

    def method_not_allowed(method: str, allowed: set[str]) -> RefusalRoute:
        key = (method, frozenset(allowed))
        route = not_allowed.get(key)
        if route is None:
            route = RefusalRoute(web.HTTPMethodNotAllowed(method, allowed), around)
            if method in hdrs.METH_ALL and len(not_allowed) < _MAX_NOT_ALLOWED:
                not_allowed[key] = route
        return route

    async def resolve(request: web.Request) -> UrlMappingMatchInfo:
        if router._matched_sub_app_resources:  # domain sub-apps: aiohttp's way, unchanged
            return await base_resolve(request)
        # The walk of UrlDispatcher.resolve (aiohttp 3.14): the most explicit prefix first.
        index = router._resource_index
        allowed_methods: set[str] = set()
        url_part = request.rel_url.path_safe
        while url_part:
            for candidate in index.get(url_part, ()):
                match_dict, allowed = await candidate.resolve(request)
                if match_dict is not None:
                    return match_dict
                allowed_methods |= allowed
            if url_part == "/":
                break
            url_part = url_part.rpartition("/")[0] or "/"
        if allowed_methods:
            return Refused(method_not_allowed(request.method, allowed_methods))
        return Refused(not_found)

    router.resolve = resolve  # type: ignore[method-assign]
