"""The operator status page (`/status`), its sign-in, and `/api/observability/history`.

`install(app)` keeps a day of per-minute points (`observability.history`) fed from what
`/api/observability` reads, and a session signer (`edge.sessions`) when API_KEY is set.

Sign-in: a form POSTs the operator key (API_KEY, form-encoded, never in a URL) to
`/status/sign-in`, which answers with a signed, expiring (12 h), HttpOnly, SameSite=Strict
session cookie (Secure, and named `__Host-status_session`, in production). A wrong key counts
toward the lockout of `/api/v1` (ten failures a minute lock the address out for five minutes,
429) and is audit-logged as `api.auth.refused`. Cross-site requests: the cookie is
SameSite=Strict, and sign-in and sign-out also refuse a POST whose `Origin` is missing or is not
this host (`Sec-Fetch-Site`, when sent, must say same-origin).

The page is static (control/static: HTML, CSS and JS, no build step, no CDN); it is served with
a strict Content-Security-Policy of its own (`STATUS_CSP`), and reads the two JSON endpoints
with the session cookie every 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import math
import os
import resource
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yarl
from aiohttp import web
from prometheus_client import Gauge, Info, ProcessCollector

from control.observers import check_address, require_observer, session_valid
from control.operator import operational_state
from control.params import responds
from edge.app_keys import (
    AUTH,
    DATABASE,
    GATEWAY,
    HISTORY,
    METRICS,
    OBSERVATORY,
    SECRETS,
    SESSIONS,
    SETTINGS,
)
from edge.client_ip import client_ip
from edge.errors import APIError
from edge.sessions import SessionSigner, cookie_name
from observability.history import INTERVAL_SECONDS, MINUTES, History
from store import audit
from store import knowledge as knowledge_store
from utils.logging import get_logger

log = get_logger(__name__)

routes = web.RouteTableDef()

STATUS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
# Served files, read once: name -> (content type, bytes). Nothing else under /status/static.
_FILES = {path.name: (_TYPES[path.suffix], path.read_bytes())
          for path in sorted(STATIC.iterdir()) if path.suffix in (".js", ".css")}
_STATUS_HTML = (STATIC / "status.html").read_bytes()
_SIGN_IN_HTML = (STATIC / "sign-in.html").read_text(encoding="utf-8")
PROCESS_STARTED = time.time()
ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    """The installed distribution's version, else pyproject.toml's, else "unknown"."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("community-bot")
    try:
        with (ROOT / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


VERSION = _version()


def rss_bytes() -> int:
    """Resident memory now (/proc/self/statm), or the peak where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def shard_count(gateway: object) -> int | None:
    shards = getattr(gateway, "shards", None)
    if isinstance(shards, Mapping) and shards:
        return len(shards)
    count = getattr(gateway, "shard_count", None)
    return count if isinstance(count, int) else None


# --- wiring ----------------------------------------------------------------------------------


def install(app: web.Application, *, interval: float = INTERVAL_SECONDS) -> None:
    """The history (and its task) and the session signer; routes come from `routes`."""
    secrets = app[SECRETS]
    app[SESSIONS] = SessionSigner(lambda: secrets.value("API_KEY")) \
        if secrets.value("API_KEY") is not None else None
    app[HISTORY] = History(PointSource(app), interval=interval)
    app.cleanup_ctx.append(history_context)
    _process_metrics(app)


def _process_metrics(app: web.Application) -> None:
    """What the page shows of the process, for Prometheus too (deploy/grafana): version,
    start time and memory (prometheus_client's process collector), and shards. Each is read
    only when /metrics is scraped."""
    registry = app[METRICS].registry
    ProcessCollector(registry=registry)
    Info("community_bot_build", "The running bot's version",
         registry=registry).info({"version": VERSION})
    gateway = app[GATEWAY]

    def shards() -> float:
        count = shard_count(gateway) if gateway is not None else None
        return float(count) if count is not None else math.nan

    Gauge("discord_shards", "Shards this process runs (NaN when the bot is off)",
          registry=registry).set_function(shards)


async def history_context(app: web.Application) -> AsyncIterator[None]:
    """A point every minute while the app runs."""
    task = asyncio.create_task(app[HISTORY].run(), name="observability-history")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


history_context.is_history = True  # type: ignore[attr-defined]  # bench/status.py finds it


class PointSource:
    """The history's source. A point: the minute's series (`Observatory.completed`), the state
    /api/observability reports (`operational_state`), shards, and the Drive sync runs started
    since the previous point. The refusals counter becomes an increase here."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._since: float | None = None  # the observatory's clock: where the next point starts
        self._refusals = 0
        self._wall = time.time()

    async def __call__(self) -> dict[str, Any]:
        app = self._app
        self._since, window = app[OBSERVATORY].completed(self._since)
        state = operational_state(app)
        now = time.time()
        runs = await _drive_runs_since(app, self._wall)
        refusals = int(state["rate_limiter"]["refusals"])
        bot = state["bot"]
        point = {"t": now, "seconds": window["seconds"], "routes": window["routes"],
                 "webhooks": window["webhooks"], "outbox": state["outbox"],
                 "gateway_latency_ms": bot["gateway_latency_ms"],
                 "guilds": bot["guilds"] if bot["enabled"] else None,
                 "shards": shard_count(app[GATEWAY]) if bot["enabled"] else None,
                 "rate_limit_refusals": max(refusals - self._refusals, 0),
                 "drive_sync_runs": runs}
        self._refusals, self._wall = refusals, now
        return point

    def live(self) -> dict[str, Any]:
        """Since the last point, up to now: the minute in progress (not stored)."""
        _, window = self._app[OBSERVATORY].completed(self._since, current=True)
        return {"t": time.time(), "seconds": round(window["seconds"], 3),
                "routes": window["routes"], "webhooks": window["webhooks"]}


async def _drive_runs_since(app: web.Application, since: float) -> int:
    try:
        runs = await knowledge_store.recent_sync_runs(app[DATABASE], limit=10)
    except Exception as exc:  # a point must still be taken while the database is away
        log.warning("drive sync runs unavailable", error_type=type(exc).__name__)
        return 0
    return sum(1 for run in runs if run.started_at.timestamp() > since)


async def _drive_sync(app: web.Application) -> dict[str, Any]:
    configured = app[SETTINGS].drive_folder_id is not None
    try:
        runs = await knowledge_store.recent_sync_runs(app[DATABASE], limit=1)
    except Exception as exc:
        log.warning("drive sync runs unavailable", error_type=type(exc).__name__)
        return {"configured": configured, "last": None, "unavailable": True}
    return {"configured": configured, "last": runs[0].as_dict() if runs else None}


# --- pages -----------------------------------------------------------------------------------


def _page(body: bytes | str, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = "text/html") -> web.Response:
    response = web.Response(body=body.encode() if isinstance(body, str) else body,
                            status=status, headers=headers, content_type=content_type,
                            charset="utf-8")
    response.headers["Content-Security-Policy"] = STATUS_CSP
    response.headers["Cache-Control"] = "no-store"
    # "same-origin", not "no-referrer": with no-referrer a browser sends `Origin: null` on
    # the form POSTs, which the CSRF check must refuse.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _sign_in_page(message: str | None = None, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    notice = f'<p class="message" role="alert" id="message">{html.escape(message)}</p>' \
        if message else ""
    return _page(_SIGN_IN_HTML.replace("<!--message-->", notice), status, headers)


def _same_origin(request: web.Request) -> bool:
    """A browser's POST from this very site: Origin names this host (and port)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    origin = request.headers.get("Origin")
    if not origin or origin == "null" or not request.host:
        return False
    try:
        sent = yarl.URL(origin)
        own = yarl.URL(f"{sent.scheme}://{request.host}")
    except ValueError:
        return False
    return sent.scheme in ("http", "https") and sent.host is not None \
        and (sent.host.lower(), sent.port) == ((own.host or "").lower(), own.port)


@routes.get("/status")
@responds(200, "text/html", "the page, or its sign-in form")
async def status_page(request: web.Request) -> web.Response:
    """The operator status page (HTML), or its sign-in form without a session."""
    check_address(request)
    if session_valid(request):
        return _page(_STATUS_HTML)
    return _sign_in_page()


@routes.get("/status/static/{name}")
@responds(200, "text/plain", "status.js or status.css")
async def status_static(request: web.Request) -> web.Response:
    """The status page's script and style sheet."""
    found = _FILES.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    content_type, body = found
    response = _page(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.post("/status/sign-in")
@responds(303, None, "signed in: a session cookie, and back to /status")
async def status_sign_in(request: web.Request) -> web.Response:
    """Exchange the operator key (form field `key`) for a session cookie; 303 to /status."""
    check_address(request)
    if not _same_origin(request):
        return _sign_in_page("Sign in from this site's own form.", 403)
    context = request.app[AUTH]
    address = client_ip(request, context.trusted_proxies)
    locked = context.failures.locked_for(address)
    if locked:
        return _sign_in_page(f"Too many failed attempts: try again in {locked} s.", 429,
                             {"Retry-After": str(locked)})
    sessions = request.app[SESSIONS]
    if sessions is None:
        return _sign_in_page("No API_KEY is configured, so nobody can sign in.", 503)
    form = await request.post()
    key = form.get("key")
    if not isinstance(key, str) or not context.authenticator.static_key_matches(key):
        await context.record_refusal(address, status=401, reason="invalid operator key",
                                     path="/status/sign-in")
        return _sign_in_page("That is not the operator key.", 401)
    await audit.record_best_effort(context.database, "status.signed_in")
    production = request.app[SETTINGS].is_production
    response = web.Response(status=303, headers={"Location": "/status",
                                                 "Cache-Control": "no-store"})
    response.set_cookie(cookie_name(production), sessions.issue(), max_age=sessions.seconds,
                        path="/", secure=production, httponly=True, samesite="Strict")
    return response


@routes.post("/status/sign-out")
@responds(303, None, "signed out, back to /status")
async def status_sign_out(request: web.Request) -> web.Response:
    """End the session (the cookie is deleted and refused from now on); 303 to /status."""
    if not _same_origin(request):
        return _sign_in_page("Sign out from this site's own page.", 403)
    production = request.app[SETTINGS].is_production
    name = cookie_name(production)
    sessions = request.app[SESSIONS]
    if sessions is not None:
        sessions.revoke(request.cookies.get(name))
    response = web.Response(status=303, headers={"Location": "/status",
                                                 "Cache-Control": "no-store"})
    response.del_cookie(name, path="/", secure=production, httponly=True, samesite="Strict")
    return response


# --- the history -----------------------------------------------------------------------------


def _minutes(request: web.Request) -> int:
    text = request.query.get("minutes", "60")
    if not (text.isascii() and text.isdigit() and len(text) <= 4) \
            or not 1 <= int(text) <= MINUTES:
        raise APIError(422, f"minutes must be 1..{MINUTES}")
    return int(text)


@routes.get("/api/observability/history")
@responds(200, dict[str, Any], "per-minute points (see docs/api.md)")
async def observability_history(request: web.Request) -> web.Response:
    """Per-minute points of the last `minutes` (1..1440, default 60), with the process."""
    await require_observer(request)
    minutes = _minutes(request)
    app = request.app
    history = app[HISTORY]
    body = history.read(minutes)
    body["minutes"] = minutes
    if isinstance(history.source, PointSource):
        body["live"] = history.source.live()
    gateway = app[GATEWAY]
    body["bot"] = {"shards": shard_count(gateway) if gateway is not None else None}
    body["drive_sync"] = await _drive_sync(app)
    uptime = time.time() - PROCESS_STARTED
    body["process"] = {"version": VERSION, "uptime_seconds": round(uptime, 1),
                       "started_at": round(PROCESS_STARTED, 3), "rss_bytes": rss_bytes(),
                       "python": sys.version.split()[0]}
    return web.json_response(body)
