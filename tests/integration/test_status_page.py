"""The status page over HTTP: sign-in and sign-out, the cookie's attributes, CSRF and lockout,
who may read the history, what a point holds, and the history's memory after a simulated day."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import select

import api
from control.status_page import STATUS_CSP
from edge.app_keys import HISTORY, OBSERVATORY
from edge.lockout import FAILURE_THRESHOLD
from observability import history as history_module
from observability.history import MAX_ROUTES, MAX_WEBHOOKS, MINUTES, History
from observability.recording import route_template
from observability.series import Observatory
from store import api_keys
from store.database import Database
from store.models import AuditLog
from utils.config import Settings
from utils.logging import configure_logging

API_KEY = "operator-key-0123456789abcdef"
Client = Any


class FakeClock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build_app(make_settings: Callable[..., Settings], database: Database,
              **overrides: Any) -> web.Application:
    settings = make_settings(**{"api_key": API_KEY, "rate_limit_write": "1000/minute",
                                "rate_limit_read": "1000/minute", **overrides})
    app = api.create_app(settings, database=database)

    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app.router.add_get("/test/explode/{item}", explode)
    return app


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database) -> Client:
    return await aiohttp_client(build_app(make_settings, database))


def origin(client: Client) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def sign_in(client: Client, key: str = API_KEY, **headers: str) -> Any:
    return await client.post("/status/sign-in", data={"key": key},
                             headers={**origin(client), **headers}, allow_redirects=False)


def session_cookie(client: Client) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == "status_session":
            return str(cookie.value)
    return None


async def test_sign_in_gives_a_strict_session_cookie_and_the_page(client: Client) -> None:
    form = await client.get("/status")
    assert form.status == 200
    text = await form.text()
    assert 'action="/status/sign-in"' in text
    assert 'method="post"' in text
    assert 'id="routes"' not in text
    assert (await client.get("/api/observability/history")).status == 401

    response = await sign_in(client)
    assert response.status == 303
    assert response.headers["Location"] == "/status"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("status_session=v1.")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age", "samesite"} <= attributes
    for attribute in ("SameSite=Strict", "Path=/", "Max-Age=43200"):
        assert attribute in cookie
    assert "secure" not in attributes  # development over plain HTTP
    assert API_KEY not in cookie

    page = await client.get("/status")
    assert 'id="routes"' in await page.text()
    for path in ("/api/observability", "/api/observability/history", "/metrics"):
        assert (await client.get(path)).status == 200, path


async def test_in_production_the_cookie_is_secure_and_host_only(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    client = await aiohttp_client(build_app(make_settings, database, app_env="production"))
    response = await sign_in(client)
    assert response.status == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-status_session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict"):
        assert attribute in cookie


async def test_page_and_files_carry_the_strict_policy(client: Client) -> None:
    for path, kind in (("/status", "text/html"), ("/status/static/status.js", "text/javascript"),
                       ("/status/static/status.css", "text/css")):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == kind
        assert response.headers["Content-Security-Policy"] == STATUS_CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    for name in ("status.html", "sign-in.html", "..%2Fstatus_page.py", "nope.js"):
        assert (await client.get(f"/status/static/{name}")).status == 404, name
    html = await (await client.get("/status")).text()
    for inline in ("<script>", "style=", "<style"):
        assert inline not in html


async def test_wrong_keys_are_refused_counted_audited_and_lock_the_address_out(
        client: Client, database: Database) -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    try:
        for attempt in range(FAILURE_THRESHOLD):
            refused = await sign_in(client, key=f"wrong-{attempt}-{API_KEY}")
            assert refused.status == 401
            assert "That is not the operator key." in await refused.text()
        locked = await sign_in(client)  # the right key, but too late
        assert locked.status == 429
        assert int(locked.headers["Retry-After"]) > 0
        # One tracker: the same address is locked out of /api/v1 too.
        assert (await client.get("/api/v1/me", headers={"X-Api-Key": API_KEY})).status == 429
    finally:
        structlog.reset_defaults()
    assert session_cookie(client) is None
    assert API_KEY not in stream.getvalue()  # neither the right key nor the wrong ones
    assert "wrong-0" not in stream.getvalue()
    async with database.session() as session:
        rows = (await session.scalars(select(AuditLog))).all()
    refusals = [row for row in rows if row.event == "api.auth.refused"]
    assert len(refusals) == FAILURE_THRESHOLD
    assert refusals[0].details == {"status": 401, "reason": "invalid operator key",
                                   "path": "/status/sign-in"}
    assert "wrong" not in json.dumps([row.details for row in rows])


@pytest.mark.parametrize("headers", [
    {}, {"Origin": "http://evil.example"}, {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"}, {"Sec-Fetch-Site": "cross-site"},
])
async def test_cross_site_sign_in_and_sign_out_are_refused(
        client: Client, headers: dict[str, str]) -> None:
    sent = {**origin(client), **headers} if "Sec-Fetch-Site" in headers else headers
    refused = await client.post("/status/sign-in", data={"key": API_KEY}, headers=sent,
                                allow_redirects=False)
    assert refused.status == 403
    assert "Set-Cookie" not in refused.headers
    assert (await sign_in(client)).status == 303
    out = await client.post("/status/sign-out", headers=sent, allow_redirects=False)
    assert out.status == 403
    assert (await client.get("/api/observability")).status == 200  # still signed in


async def test_sign_out_ends_the_session(client: Client) -> None:
    assert (await sign_in(client, **{"Sec-Fetch-Site": "same-origin"})).status == 303
    token = session_cookie(client)
    assert token is not None
    out = await client.post("/status/sign-out", headers=origin(client), allow_redirects=False)
    assert out.status == 303
    assert out.headers["Location"] == "/status"
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    assert session_cookie(client) is None
    # A copy of the cookie kept by someone is refused by this process from now on.
    replayed = await client.get("/api/observability",
                                headers={"Cookie": f"status_session={token}"})
    assert replayed.status == 401
    assert 'id="sign-in-form"' in await (await client.get("/status")).text()


async def test_without_api_key_nobody_signs_in(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    client = await aiohttp_client(build_app(make_settings, database, api_key=None))
    assert (await sign_in(client, key="anything")).status == 503
    assert (await client.get("/api/observability/history")).status == 503


async def test_who_may_read_the_history(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    client = await aiohttp_client(build_app(make_settings, database))
    path = "/api/observability/history"
    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers={"X-Api-Key": API_KEY + "x"})).status == 401
    assert (await client.get(path, headers={"X-Api-Key": API_KEY})).status == 200
    reader = await api_keys.create_key(database, name="grafana", scopes=("observability:read",),
                                       expires_in=None)
    other = await api_keys.create_key(database, name="stats", scopes=("stats:read",),
                                      expires_in=None)
    for endpoint in (path, "/api/observability", "/metrics"):
        assert (await client.get(endpoint, headers={"X-Api-Key": reader.plaintext})).status \
            == 200, endpoint
        denied = await client.get(endpoint, headers={"X-Api-Key": other.plaintext})
        assert denied.status == 403
        assert (await denied.json())["detail"] == "missing scope observability:read"
    # A scoped key never reaches /api/v1 routes it was not given.
    assert (await client.get("/api/v1/me", headers={"X-Api-Key": reader.plaintext})).status \
        == 403
    await api_keys.revoke_key(database, reader.prefix)
    assert (await client.get(path, headers={"X-Api-Key": reader.plaintext})).status == 401
    for bad in ("0", "1441", "abc", "６", "-1", "1" * 9):
        response = await client.get(path, params={"minutes": bad},
                                    headers={"X-Api-Key": API_KEY})
        assert response.status == 422, bad
    fenced = await aiohttp_client(build_app(make_settings, database, allowed_ips="10.0.0.0/8"))
    assert (await fenced.get(path, headers={"X-Api-Key": API_KEY})).status == 403
    assert (await fenced.get("/status")).status == 403
    assert (await sign_in(fenced)).status == 403


async def test_a_point_holds_the_minute_by_template_class_and_webhook(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database) -> None:
    app = build_app(make_settings, database, webhooks_enabled="founder",
                    rate_limit_webhook="2/minute")
    clock = FakeClock()
    observatory = app[OBSERVATORY]
    observatory._clock = clock  # before any series exists: they all take this clock
    observatory.started = clock()
    client = await aiohttp_client(app)
    history = app[HISTORY]
    for item in ("a", "b"):
        assert (await client.get(f"/test/explode/{item}")).status == 500
    for path in ("/nope/1", "/nope/2", "/nope/3"):
        assert (await client.get(path)).status == 404
    assert (await client.get("/health")).status == 200
    for _ in range(4):
        await client.post("/webhooks/founder", data=b"{}",
                          headers={"Content-Type": "application/json"})
    clock.now += 60
    await history.tick()
    clock.now += 60
    await history.tick()  # an empty minute
    body = await (await client.get("/api/observability/history",
                                   headers={"X-Api-Key": API_KEY})).json()
    first, second = body["points"]
    assert first["requests"] == {"2xx": 1, "4xx": 3, "429": 2, "5xx": 4}
    assert second["requests"] == {"2xx": 0, "4xx": 0, "429": 0, "5xx": 0}
    assert [first["rate_limit_refusals"], second["rate_limit_refusals"]] == [2, 0]
    assert first["outbox"] == {"pending": 0, "sending": 0, "dead": 0}
    assert (first["guilds"], first["gateway_latency_ms"]) == (None, None)
    routes = body["routes"]
    assert set(routes) == {"GET /test/explode/{item}", "(unmatched)", "GET /health",
                           "POST /webhooks/founder"}
    assert routes["GET /test/explode/{item}"]["counts"]["5xx"] == [2, None]
    assert routes["(unmatched)"]["counts"]["4xx"] == [3, None]
    assert routes["POST /webhooks/founder"]["counts"]["429"] == [2, None]
    assert routes["GET /health"]["latency_ms"]["p95"][0] > 0
    assert body["webhooks"]["founder"]["counts"] == {
        "2xx": [0, None], "4xx": [0, None], "429": [2, None], "5xx": [2, None]}
    assert body["process"]["version"] == "0.1.0"
    assert body["process"]["rss_bytes"] > 10 * 2**20
    assert body["drive_sync"] == {"configured": False, "last": None}


# --- memory after a simulated day --------------------------------------------------------

# The bound the note states: a day of points from traffic on 1,000 distinct paths (which the
# router collapses into a handful of templates) stays under 1 MiB; whatever the routes, the cap
# of MAX_ROUTES routes and MAX_WEBHOOKS webhooks per point keeps a day under 8 MiB.
TYPICAL_BOUND = 1 * 2**20
HARD_BOUND = 8 * 2**20


async def templates_of(app: web.Application, paths: list[str]) -> dict[str, str]:
    """Each path's route template, resolved by the app's own router."""
    found = {}
    for path in paths:
        request = make_mocked_request("GET", path, app=app)
        request._match_info = await app.router.resolve(request)
        found[path] = route_template(request)
    return found


def day_history(observatory: Observatory, clock: FakeClock) -> History:
    """A history whose points come from `observatory`, with fixed gauges."""
    since: list[float | None] = [None]

    async def source() -> dict[str, Any]:
        since[0], window = observatory.completed(since[0])
        return {"t": clock.now, **window,
                "outbox": {"pending": 1, "sending": 0, "dead": 0}, "gateway_latency_ms": 40.0,
                "guilds": 3, "shards": 1, "rate_limit_refusals": 0, "drive_sync_runs": 0}

    return History(source, clock=clock)


async def simulate_day(history: History, observatory: Observatory, clock: FakeClock,
                       traffic: Callable[[int], list[tuple[str, int]]]) -> int:
    tracemalloc.start()
    try:
        for minute in range(MINUTES):
            for route, status in traffic(minute):
                observatory.record(route, None, status, 0.002 + (minute % 7) / 1000)
            clock.now += 60
            await history.tick()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    traced = snapshot.filter_traces([tracemalloc.Filter(True, history_module.__file__)])
    return sum(stat.size for stat in traced.statistics("filename"))


async def test_a_day_on_a_thousand_paths_stays_under_the_bound(
        make_settings: Callable[..., Settings]) -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    app = build_app(make_settings, database)
    try:
        paths = [f"/api/v1/guilds/{1000 + i}/config" for i in range(600)] + \
            [f"/api/v1/guilds/{1000 + i}/audit" for i in range(200)] + \
            [f"/random/{i}/path" for i in range(190)] + \
            ["/health", "/readyz", "/metrics", "/api/observability", "/api/v1/me",
             "/openapi.json", "/status", "/test/explode/x", "/api/v1/commands/stats",
             "/api/observability/history"]
        assert len(set(paths)) == 1000
        templates = await templates_of(app, paths)
    finally:
        await database.dispose()
    distinct = set(templates.values())
    assert len(distinct) == 13, distinct  # 1,000 paths, 13 series
    assert "GET /api/v1/guilds/{guild_id}/config" in distinct
    assert not any("/1000/" in template for template in distinct)

    clock = FakeClock()
    observatory = Observatory(clock)
    history = day_history(observatory, clock)
    statuses = (200, 200, 200, 200, 404, 429, 500, 200)

    def traffic(minute: int) -> list[tuple[str, int]]:
        # 70 requests a minute over every path in turn: each path is hit ~100 times a day.
        start = minute * 70
        return [(templates[paths[i % 1000]], statuses[i % len(statuses)])
                for i in range(start, start + 70)]

    traced = await simulate_day(history, observatory, clock, traffic)
    assert len(history) == MINUTES
    print(f"\nhistory after 24 h on 1,000 paths ({len(distinct)} templates): "
          f"{traced / 1024:.0f} KiB traced, {history.memory_bytes() / 1024:.0f} KiB counted")
    assert traced < TYPICAL_BOUND
    assert abs(history.memory_bytes() - traced) < 0.05 * traced
    body = history.read(MINUTES)
    assert sum(sum(p["requests"].values()) for p in body["points"]) == 70 * MINUTES


async def test_a_day_at_the_series_cap_stays_under_the_hard_bound() -> None:
    clock = FakeClock()
    routes = {f"GET /route-{i}/{{id}}": {
        "counts": {"2xx": 1000 + i, "4xx": 10, "429": 1, "5xx": 2},
        "latency_ms": {"p50": 1.5, "p95": 12.25, "p99": 80.0}} for i in range(3 * MAX_ROUTES)}
    webhooks = {f"sender-{i}": routes["GET /route-1/{id}"] for i in range(3 * MAX_WEBHOOKS)}

    async def source() -> dict[str, Any]:
        # Every minute, three times as many routes and webhooks as a point keeps.
        return {"t": clock.now, "seconds": 60.0, "routes": routes, "webhooks": webhooks,
                "outbox": {"pending": 1, "sending": 0, "dead": 0}, "gateway_latency_ms": 40.0}

    history = History(source, clock=clock)
    for _ in range(MINUTES + 10):
        await history.tick()
    # memory_bytes() is what tracemalloc finds (the test above checks both): this one runs
    # without tracing, which would make it five times slower.
    size = history.memory_bytes()
    print(f"\nhistory after 24 h at the cap ({MAX_ROUTES} routes and {MAX_WEBHOOKS} webhooks "
          f"a minute): {size / 2**20:.2f} MiB")
    assert size < HARD_BOUND
    last = history.read(1)
    assert (len(last["routes"]), len(last["webhooks"])) == (MAX_ROUTES, MAX_WEBHOOKS)
