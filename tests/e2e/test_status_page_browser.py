"""The status page in a real browser: headless Chromium (Debian's package) driven by Playwright.

Sign in through the form; traffic to a few routes (2xx, 404s, 429s and a 500 from a test-only
route) shows up with the right counts within one refresh (10 s); the rows are worst first, a
route opens its 24-hour view; no console error and no CSP violation on the way (the detector is
checked to catch one); sign-out returns to the form; a wrong key is refused (the 401 is the one
console line Chromium writes), counted toward the lockout and audited. Screenshots (desktop
light, phone dark) go to $TEST_ARTIFACTS (default: the temporary folder's
community-bot-artifacts/).

Chromium comes from `apt-get install chromium` (.ci/run installs it when missing). Without it
the test is skipped, unless REQUIRE_SERVICES=1, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright
from sqlalchemy import select

import api
from edge.app_keys import AUTH, HISTORY
from store.database import Database
from store.models import AuditLog
from tests.conftest import SERVICES_REQUIRED
from utils.config import Settings

pytestmark = pytest.mark.e2e

API_KEY = "browser-operator-key-0123456789"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS",
                                Path(tempfile.gettempdir()) / "community-bot-artifacts"))
# Flags that keep Chromium from reaching out to Google's services (there is no network here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions"]
REFRESH_SECONDS = 10
# Collects CSP violations before any page script runs (init scripts are not subject to CSP).
VIOLATION_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    message = ("chromium is not installed (apt-get install chromium; .ci/run installs it): "
               "the status page's browser test cannot run")
    if SERVICES_REQUIRED:
        pytest.fail(f"{message}; REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture
async def sqlite_database(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    path = tmp_path / "bot.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.dispose()


@pytest.fixture
async def server(aiohttp_server: Callable[..., Any], make_settings: Callable[..., Settings],
                 sqlite_database: Database) -> Any:
    # The browser's own reads never run out of budget; the webhook budget of 2 a minute makes
    # the 429s; founder has no secret, so its deliveries that pass are 503s.
    settings = make_settings(api_key=API_KEY, rate_limit_read="1000/minute",
                             rate_limit_write="1000/minute", rate_limit_health="1000/minute",
                             rate_limit_webhook="2/minute", webhooks_enabled="founder")
    app = api.create_app(settings, database=sqlite_database)

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["item"]})

    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("a test-only failure")

    app.router.add_get("/test/items/{item}", item)
    app.router.add_get("/test/explode/{item}", explode)
    app[HISTORY].interval = 1.0  # a point a second, so the plots have points to draw
    return await aiohttp_server(app)


async def send_traffic(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for item in ("1", "2", "3"):
            async with session.get(f"{base}/test/items/{item}") as response:
                assert response.status == 200
        for path in ("/no-such-page", "/test/items"):
            async with session.get(f"{base}{path}") as response:
                assert response.status == 404
        async with session.get(f"{base}/test/explode/1") as response:
            assert response.status == 500
        statuses = []
        for _ in range(4):
            async with session.post(f"{base}/webhooks/founder", data=b"{}",
                                    headers={"Content-Type": "application/json"}) as response:
                statuses.append(response.status)
        assert sorted(statuses) == [429, 429, 503, 503]


def cell(table: str, name: str, column: str) -> str:
    return f'#{table} tr[data-name="{name}"] td.c-{column}'


EXPECTED = [  # (table, series, column, text): counts since start
    ("routes", "GET /test/items/{item}", "requests", "3"),
    ("routes", "GET /test/items/{item}", "2xx", "3"),
    ("routes", "(unmatched)", "4xx", "2"),
    ("routes", "GET /test/explode/{item}", "5xx", "1"),
    ("routes", "GET /test/explode/{item}", "success", "0 %"),
    ("routes", "POST /webhooks/founder", "429", "2"),
    ("routes", "POST /webhooks/founder", "5xx", "2"),
    ("webhooks", "founder", "requests", "4"),
    ("webhooks", "founder", "429", "2"),
    ("webhooks", "founder", "5xx", "2"),
]


async def shows_expected_counts(page: Page) -> bool:
    for table, name, column, text in EXPECTED:
        found = await page.locator(cell(table, name, column)).all_text_contents()
        if found != [text]:
            return False
    return True


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


async def test_the_status_page_in_chromium(server: Any, sqlite_database: Database,
                                           artifacts: Path) -> None:
    require_chromium()
    base = str(server.make_url("")).rstrip("/")
    app = server.app
    console_errors: list[str] = []
    urls: list[str] = []
    async with async_playwright() as playwright:
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        context = await playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, color_scheme="light")
        try:
            await context.add_init_script(VIOLATION_RECORDER)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("console", lambda message: console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.on("request", lambda request: urls.append(request.url))

            # Sign in through the form.
            await page.goto(f"{base}/status")
            assert await page.locator("#sign-in-form").is_visible()
            await page.fill("#key", API_KEY)
            async with page.expect_navigation():
                await page.click("#sign-in")
            assert page.url == f"{base}/status", await page.content()
            await page.wait_for_selector("body[data-refreshed]", timeout=10_000)
            cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
            session = cookies["status_session"]
            assert session["httpOnly"] is True
            assert session["sameSite"] == "Strict"

            # Traffic, then the counts within one refresh.
            await send_traffic(base)
            sent = time.monotonic()
            deadline = sent + REFRESH_SECONDS + 3
            while not await shows_expected_counts(page):
                assert time.monotonic() < deadline, "the page did not show the traffic in time"
                await asyncio.sleep(0.25)
            shown_after = time.monotonic() - sent
            assert shown_after <= REFRESH_SECONDS + 3
            assert await page.locator("#total-429").text_content() == "2"
            assert await page.locator("#total-5xx").text_content() == "3"
            assert await page.locator("#total-4xx").text_content() == "2"
            # Worst first: every 5xx (explode) before half 5xx (founder) before the rest.
            order = await page.locator("#routes tbody tr").evaluate_all(
                "rows => rows.map(row => row.dataset.name)")
            assert order[:2] == ["GET /test/explode/{item}", "POST /webhooks/founder"]
            assert await page.locator("#routes tbody tr svg").count() >= 2 * len(order)
            assert "req/s" in (await page.locator("#request-rate").text_content() or "")
            assert (await page.locator("#version").text_content()) == "0.1.0"
            assert "MiB" in (await page.locator("#memory").text_content() or "")

            # A route's 24 hours.
            await page.click('#routes tr[data-name="GET /test/items/{item}"] button.name')
            await page.wait_for_selector("#detail:not([hidden]) #chart-latency svg")
            assert await page.locator("#detail-title").text_content() == "GET /test/items/{item}"
            assert await page.locator("#detail svg").count() == 3
            await page.screenshot(path=str(artifacts / "status-page.png"), full_page=True)
            await page.click("#detail-close")
            assert await page.locator("#detail").is_hidden()

            # Readable on a phone, in the dark.
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.emulate_media(color_scheme="dark")
            await page.wait_for_timeout(300)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, "the page scrolls sideways on a phone"
            await page.screenshot(path=str(artifacts / "status-page-phone-dark.png"),
                                  full_page=True)
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.emulate_media(color_scheme="light")

            violations = await page.evaluate("window.__cspViolations")
            assert violations == []
            assert console_errors == []  # signed in, refreshed, browsed: nothing logged

            # Sign out: back to the form, the cookie gone.
            async with page.expect_navigation():
                await page.click("#sign-out")
            assert await page.locator("#sign-in-form").is_visible()
            assert "status_session" not in {c["name"] for c in await context.cookies()}

            # A wrong key: refused with a message, counted toward the lockout, audited.
            await page.fill("#key", "not-the-key")
            async with page.expect_navigation() as navigation:
                await page.click("#sign-in")
            assert (await navigation.value).status == 401  # type: ignore[union-attr]
            assert await page.locator("#message").text_content() == \
                "That is not the operator key."
            assert await page.locator("#sign-in-form").is_visible()
            failures = app[AUTH].failures._failures
            assert [len(times) for times in failures.values()] == [1]
            assert await page.evaluate("window.__cspViolations") == []
            # Chromium logs a page answered with an error status: the refusal, and only it.
            assert console_errors == [
                "Failed to load resource: the server responded with a status of 401 "
                "(Unauthorized)"]

            # The detector itself works: an inline style is refused and reported.
            await page.evaluate("""() => {
                const style = document.createElement('style');
                style.textContent = 'body { color: red }';
                document.head.appendChild(style);
            }""")
            await page.wait_for_function("window.__cspViolations.length > 0", timeout=5_000)
            assert (await page.evaluate("window.__cspViolations"))[0].startswith("style-src")
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)

    # The control violation was logged too, and nothing else.
    assert len(console_errors) == 2
    assert "Content Security Policy" in console_errors[1]
    assert not any(API_KEY in url for url in urls), "the key appeared in a URL"
    async with sqlite_database.session() as db_session:
        events = [(row.event, row.details.get("path")) for row in
                  (await db_session.scalars(select(AuditLog))).all()]
    assert ("api.auth.refused", "/status/sign-in") in events
    assert ("status.signed_in", None) in events
    print(f"\ntraffic shown {shown_after:.1f} s after it was sent; screenshots in {artifacts}")
