"""Observability: sketch accuracy against exact quantiles, what gets counted, the rolling
window, and who may read the operator endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import web

import api
from observability.series import QUANTILES, RELATIVE_ACCURACY, Series
from store.database import Database
from utils.config import Settings

API_KEY = "operator-key-0123456789abcdef"


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def distributions(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    bimodal = np.concatenate([rng.normal(0.004, 0.0005, n // 2), rng.normal(0.2, 0.02, n // 2)])
    return {
        "uniform": rng.uniform(0.0005, 2.0, n),
        "log-normal": rng.lognormal(mean=-4.0, sigma=1.2, size=n),
        "bimodal": np.clip(bimodal, 1e-5, None),
    }


@pytest.mark.parametrize("name", ["uniform", "log-normal", "bimodal"])
def test_quantiles_within_the_stated_relative_error(name: str) -> None:
    samples = distributions(np.random.default_rng(7), 1_000_000)[name]
    series = Series(FakeClock())
    for value in samples.tolist():
        series.record(200, value)
    report = series.report()["since_start"]
    assert report["requests"] == 1_000_000
    for label, q in QUANTILES.items():
        exact = float(np.quantile(samples, q, method="lower")) * 1000
        estimated = report["latency_ms"][label]
        assert abs(estimated - exact) <= RELATIVE_ACCURACY * exact + 1e-6, (name, label)


def test_samples_older_than_five_minutes_leave_the_window() -> None:
    clock = FakeClock()
    series = Series(clock)
    series.record(200, 1.0)
    series.record(500, 1.0)
    clock.now += 200
    series.record(200, 0.001)
    window = series.report()["last_5_minutes"]
    assert window["counts"] == {"2xx": 2, "4xx": 0, "429": 0, "5xx": 1}
    clock.now += 140  # the first two are now 340 s old; the third 140 s
    report = series.report()
    assert report["last_5_minutes"]["counts"] == {"2xx": 1, "4xx": 0, "429": 0, "5xx": 0}
    assert report["last_5_minutes"]["latency_ms"]["p99"] == pytest.approx(1.0, rel=0.01)
    assert report["since_start"]["requests"] == 3
    assert report["since_start"]["success_rate"] == pytest.approx(2 / 3)


def test_memory_per_series_is_bounded() -> None:
    series = Series(FakeClock())
    for value in np.random.default_rng(1).lognormal(-4, 3, 200_000).tolist():
        series.record(200, value)
    (only,) = series.slices
    assert only.sketch._store.length() <= 2048


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database) -> Any:
    # founder is on but has no secret: its deliveries are 503s, counted under its own series.
    settings = make_settings(api_key=API_KEY, rate_limit_read="3/minute",
                             webhooks_enabled="founder")
    app = api.create_app(settings, database=database)

    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app.router.add_get("/test/explode/{item}", explode)
    return await aiohttp_client(app)


async def report(client: Any) -> dict[str, Any]:
    response = await client.get("/api/observability", headers={"X-Api-Key": API_KEY})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_errors_429s_and_templates_are_counted(client: Any) -> None:
    for item in ("a", "b"):
        assert (await client.get(f"/test/explode/{item}")).status == 500
    assert (await client.get("/test/explode/c")).status == 500
    assert (await client.get("/test/explode/d")).status == 429  # the read budget of 3 is spent
    body = await report(client)
    series = body["routes"]["GET /test/explode/{item}"]["since_start"]
    assert series["counts"] == {"2xx": 0, "4xx": 0, "429": 1, "5xx": 3}
    assert series["success_rate"] == 0.25
    assert not any("/explode/a" in route for route in body["routes"])
    assert body["rate_limiter"]["refusals"] == 1
    assert body["bot"]["enabled"] is False
    assert body["outbox"] == {"pending": 0, "sending": 0, "sent": 0, "dead": 0}


async def test_webhooks_get_their_own_series(client: Any) -> None:
    await client.post("/webhooks/founder", data=b"{}", headers={
        "Content-Type": "application/json"})
    body = await report(client)
    assert body["webhooks"]["founder"]["since_start"]["counts"]["5xx"] == 1  # not configured


async def test_prometheus_text(client: Any) -> None:
    await client.get("/health")
    response = await client.get("/metrics", headers={"X-Api-Key": API_KEY})
    text = await response.text()
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert 'http_requests_total{route="GET /health",status_class="2xx"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'outbox_entries{status="dead"} 0.0' in text


@pytest.mark.parametrize("path", ["/api/observability", "/metrics"])
async def test_operator_endpoints_need_the_service_key(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, path: str) -> None:
    unconfigured = await aiohttp_client(api.create_app(make_settings(), database=database))
    assert (await unconfigured.get(path, headers={"X-Api-Key": "x"})).status == 503
    configured = await aiohttp_client(api.create_app(make_settings(api_key=API_KEY),
                                                     database=database))
    assert (await configured.get(path)).status == 401
    assert (await configured.get(path, headers={"X-Api-Key": API_KEY + "x"})).status == 401
    assert (await configured.get(path, headers={"X-Api-Key": API_KEY})).status == 200
    fenced = await aiohttp_client(api.create_app(
        make_settings(api_key=API_KEY, allowed_ips="10.0.0.0/8"), database=database))
    refused = await fenced.get(path, headers={"X-Api-Key": API_KEY})
    assert refused.status == 403  # the test client is 127.0.0.1


@pytest.mark.parametrize("path", ["/api/observability", "/metrics"])
async def test_wrong_operator_keys_lock_the_address_out(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, path: str) -> None:
    from edge.lockout import FAILURE_THRESHOLD

    client = await aiohttp_client(api.create_app(
        make_settings(api_key=API_KEY, rate_limit_read="1000/minute"), database=database))
    for _ in range(FAILURE_THRESHOLD):
        assert (await client.get(path)).status == 401  # no key at all: not a guess
    for attempt in range(FAILURE_THRESHOLD):
        wrong = await client.get(path, headers={"X-Api-Key": f"{API_KEY}-{attempt}"})
        assert wrong.status == 401
    locked = await client.get(path, headers={"X-Api-Key": API_KEY})  # the right key, too late
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    # One tracker: the address is locked out of /api/v1 too.
    assert (await client.get("/api/v1/me", headers={"X-Api-Key": API_KEY})).status == 429


async def test_one_access_log_line_per_request(client: Any) -> None:
    import io
    import json

    import structlog

    from utils.logging import configure_logging

    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    try:
        await client.get("/test/explode/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                         headers={"X-Request-ID": "trace-1"})
        await client.get("/health")  # probes are counted but not logged
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "access"]
    assert len(access) == 1
    (line,) = access
    assert {key: line[key] for key in ("method", "route", "status", "request_id", "client_ip")} \
        == {"method": "GET", "route": "GET /test/explode/{item}", "status": 500,
            "request_id": "trace-1", "client_ip": "127.0.0.1"}
    assert isinstance(line["ms"], float)
    assert "eyJ" not in stream.getvalue()


@pytest.mark.parametrize("path", ["/api/observability", "/metrics"])
async def test_operator_endpoints_issue_no_sql(client: Any, database: Database,
                                               path: str) -> None:
    """The operator endpoints read memory only: no statement runs on a request's behalf (the
    outbox gauge is refreshed by a task of its own, which this listener sees too)."""
    from sqlalchemy import event

    from edge.app_keys import OUTBOX_GAUGE
    from utils.logging import current_request_id

    statements: list[tuple[str | None, str]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append((current_request_id.get(), statement))

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        token = current_request_id.set("probe")
        try:  # the listener does see statements, with the request ID they run under
            await client.app[OUTBOX_GAUGE].refresh(database)
        finally:
            current_request_id.reset(token)
        for number in range(3):
            response = await client.get(path, headers={"X-Api-Key": API_KEY,
                                                       "X-Request-ID": f"operator-{number}"})
            assert response.status == 200
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)
    assert any(request_id == "probe" for request_id, _ in statements)
    assert [statement for request_id, statement in statements
            if request_id is not None and request_id.startswith("operator-")] == []


async def test_observability_marks_the_outbox_depth_with_its_time(client: Any) -> None:
    body = await report(client)
    assert body["outbox"] == {"pending": 0, "sending": 0, "sent": 0, "dead": 0}
    assert body["outbox_as_of"].endswith("Z")
