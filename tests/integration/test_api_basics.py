"""Health probes, request IDs, security headers and the error shape, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import api
from store.database import Database
from utils.config import Settings

ClientFactory = Callable[..., Any]
BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


class FakeGateway:
    def __init__(self, ready: bool) -> None:
        self.ready = ready

    def is_ready(self) -> bool:
        return self.ready

    def is_closed(self) -> bool:
        return False


def with_failing_routes(app: web.Application) -> web.Application:
    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail: password=hunter2 at /srv/secret/path.py")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    app.router.add_get("/test/explode", explode)
    app.router.add_post("/test/echo", echo)
    return app


@pytest.fixture
async def client(aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
                 database: Database) -> TestClient[web.Request, web.Application]:
    app = with_failing_routes(api.create_app(make_settings(), database=database))
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", ["/health", "/healthz"])
async def test_liveness(client: TestClient[web.Request, web.Application], path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readiness_with_database_and_bot_off(
        client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready",
                                      "checks": {"database": "ok", "discord": "off"}}


async def test_readiness_names_an_unreachable_database(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings]) -> None:
    dead = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    client = await aiohttp_client(api.create_app(make_settings(), database=dead))
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body["detail"] == "not ready: database"
    assert body["checks"]["database"] == "unavailable"
    assert body["request_id"] == response.headers["X-Request-ID"]
    await dead.dispose()


@pytest.mark.parametrize(("gateway_ready", "status"), [(True, 200), (False, 503)])
async def test_readiness_follows_the_gateway(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database, gateway_ready: bool, status: int) -> None:
    app = api.create_app(make_settings(), database=database, gateway=FakeGateway(gateway_ready))
    response = await (await aiohttp_client(app)).get("/readyz")
    assert response.status == status
    if status == 503:
        assert (await response.json())["detail"] == "not ready: discord"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/health", 200), ("GET", "/missing", 404), ("POST", "/health", 405),
     ("GET", "/test/explode", 500), ("POST", "/test/echo", 400)],
)
async def test_every_response_carries_headers_and_errors_are_json(
        client: TestClient[web.Request, web.Application], method: str, path: str,
        status: int) -> None:
    response = await client.request(method, path, data=b"{not json" if method == "POST" else None)
    assert response.status == status
    for name, value in BASE_HEADERS.items():
        assert response.headers[name] == value
    assert "aiohttp" not in response.headers.get("Server", "")
    assert "Strict-Transport-Security" not in response.headers
    if status >= 400:
        assert response.content_type == "application/json"
        body = await response.json()
        assert set(body) == {"detail", "request_id"}
        assert body["request_id"] == response.headers["X-Request-ID"]


async def test_unhandled_error_leaks_nothing(
        client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/test/explode")
    text = await response.text()
    assert response.status == 500
    for leaked in ("RuntimeError", "hunter2", "internal detail", "/srv", "Traceback"):
        assert leaked not in text


async def test_method_not_allowed_keeps_allow_header(
        client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/readyz")
    assert response.status == 405
    assert response.headers["Allow"] == "GET,HEAD"


async def test_body_over_one_mebibyte_is_413(
        client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/test/echo", data=b"x" * (1024 * 1024 + 1),
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["detail"] == "Request Entity Too Large"


@pytest.mark.parametrize("inbound", ["abc-123", "A.b_C-9", "x" * 128])
async def test_valid_client_request_id_is_kept(
        client: TestClient[web.Request, web.Application], inbound: str) -> None:
    response = await client.get("/missing", headers={"X-Request-ID": inbound})
    assert response.headers["X-Request-ID"] == inbound
    assert (await response.json())["request_id"] == inbound


@pytest.mark.parametrize("inbound", ["", "x" * 129, "has space", "semi;colon", "new\\nline",
                                     "ünï", "<script>"])
async def test_invalid_client_request_id_is_replaced(
        client: TestClient[web.Request, web.Application], inbound: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": inbound})
    made = response.headers["X-Request-ID"]
    assert made != inbound
    assert len(made) == 32
    assert made.isalnum()


async def test_production_adds_hsts_and_csp(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database) -> None:
    settings = make_settings(app_env="production")
    response = await (await aiohttp_client(api.create_app(settings, database=database))).get(
        "/missing")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response.headers["Content-Security-Policy"] == \
        "default-src 'none'; frame-ancestors 'none'"


async def test_header_overrides_apply_to_errors_too(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database: Database) -> None:
    settings = make_settings(security_header_x_frame_options="SAMEORIGIN",
                             security_header_referrer_policy="")
    response = await (await aiohttp_client(api.create_app(settings, database=database))).get(
        "/missing")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Referrer-Policy" not in response.headers


async def test_app_made_database_is_opened_and_closed(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        database_url: str) -> None:
    client = await aiohttp_client(api.create_app(make_settings(database_url=database_url)))
    response = await client.get("/readyz")
    assert response.status == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/health"), ("POST", "/health"), ("GET", "/no/such/page"), ("GET", "/"),
    ("GET", "/api/v1/guilds/1/config"), ("DELETE", "/api/v1/guilds/1/config"),
    ("GET", "/webhooks/founder"), ("PATCH", "/api/observability"), ("GET", "/api/v1/"),
])
async def test_cheap_refusals_resolve_as_aiohttp_does(make_settings: Callable[..., Settings],
                                                      database: Database, method: str,
                                                      path: str) -> None:
    """edge/refusals.py keeps aiohttp's walk: same route, same status, same Allow header."""
    from aiohttp.test_utils import make_mocked_request
    from aiohttp.web_urldispatcher import UrlDispatcher

    app = api.create_app(make_settings(), database=database)
    plain = UrlDispatcher()
    for resource in app.router.resources():
        plain.register_resource(resource)
    ours = await app.router.resolve(make_mocked_request(method, path, app=app))
    theirs = await plain.resolve(make_mocked_request(method, path, app=app))
    if theirs.http_exception is None:
        assert ours.route is theirs.route
    else:
        assert ours.http_exception is not None
        assert ours.http_exception.status == theirs.http_exception.status
        assert ours.http_exception.headers.get("Allow") == \
            theirs.http_exception.headers.get("Allow")


async def test_the_front_door_wraps_every_route_without_an_aiohttp_middleware(
        client: TestClient[web.Request, web.Application]) -> None:
    """Routes added after create_app (as above) pass through it too, and the handlers keep
    what the router's readers look up on them (name, docstring, auth policy)."""
    app = client.server.app
    assert app is not None
    assert not app.middlewares  # aiohttp's per-request chain is skipped
    response = await client.get("/test/explode")
    assert response.status == 500
    assert response.headers["X-Request-ID"]
    for name, value in BASE_HEADERS.items():
        assert response.headers[name] == value
    handlers = {route.resource.canonical: route.handler for route in app.router.routes()
                if route.resource is not None}
    assert handlers["/health"].__name__ == "liveness"
    assert getattr(handlers["/api/v1/me"], "__auth_policy__", None) is not None
