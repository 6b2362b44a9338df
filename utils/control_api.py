"""The control API for a dashboard, under /api/v1: identity, guild config, audit, stats.

Every route declares its policy with `@policy(...)`: the scope it needs, whether anonymous
callers are welcome, whether the caller must administer the guild in the path. The middleware
authenticates, enforces the policy, bounds the handler to 30 s, audits refusals and tightens the
rate limit of an address that keeps failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ConfigDict, Field

from store import accounts, audit, guild_settings
from store.database import Database
from utils.auth import ANONYMOUS, Authenticator, AuthError, Principal, revoke
from utils.client_ip import IPNetwork, client_ip
from utils.errors import APIError, error_response, parse_json_body
from utils.logging import get_logger

log = get_logger(__name__)

HANDLER_TIMEOUT_SECONDS = 30.0
PRINCIPAL = web.RequestKey("principal", Principal)
F = TypeVar("F", bound=Callable[..., Awaitable[web.StreamResponse]])


@dataclass(frozen=True)
class Policy:
    scope: str | None = None
    optional: bool = False  # anonymous callers allowed (and served when the provider is down)
    guild_admin: bool = False  # the caller must administer the guild in the path


def policy(scope: str | None = None, *, optional: bool = False,
           guild_admin: bool = False) -> Callable[[F], F]:
    def decorate(handler: F) -> F:
        handler.__auth_policy__ = Policy(scope, optional, guild_admin)  # type: ignore[attr-defined]
        return handler

    return decorate


def policy_of(handler: Any) -> Policy:
    found = getattr(handler, "__auth_policy__", None)
    return found if isinstance(found, Policy) else Policy()


class GuildAdmins(Protocol):
    """Tells whether a Discord user administers a guild (the bot knows; see bot.py)."""

    async def is_guild_admin(self, discord_user_id: int, guild_id: int) -> bool: ...


class FailureTracker:
    """Addresses that keep failing authentication are refused for a while (429)."""

    def __init__(self, *, threshold: int = 10, window: float = 60.0, lockout: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 50_000) -> None:
        self._threshold, self._window, self._lockout = threshold, window, lockout
        self._clock = clock
        self._max_entries = max_entries
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked_for(self, address: str) -> int:
        until = self._locked_until.get(address, 0.0)
        remaining = until - self._clock()
        return max(0, int(remaining + 0.999))

    def fail(self, address: str) -> None:
        now = self._clock()
        if len(self._failures) >= self._max_entries:
            self._failures.clear()  # bounded memory under a flood of addresses
        recent = [t for t in self._failures.get(address, []) if now - t < self._window]
        recent.append(now)
        self._failures[address] = recent
        if len(recent) >= self._threshold:
            self._locked_until[address] = now + self._lockout
            self._failures.pop(address, None)


@dataclass
class ControlContext:
    authenticator: Authenticator
    database: Database
    trusted_proxies: tuple[IPNetwork, ...]
    owner_ids: frozenset[int]
    guild_admins: GuildAdmins | None
    failures: FailureTracker


CONTROL = web.AppKey("control", ControlContext)


async def _audit_refusal(context: ControlContext, request: web.Request, status: int,
                         reason: str) -> None:
    try:
        async with context.database.transaction() as session:
            await audit.record(session, "api.auth.refused", details={
                "status": status, "reason": reason, "path": request.match_info.route.resource
                .canonical if request.match_info.route.resource else request.path})
    except Exception as exc:
        log.warning("could not audit an auth refusal", error_type=type(exc).__name__)


def control_api_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/v1/") or \
                request.match_info.http_exception is not None:
            response: web.StreamResponse = await handler(request)
            return response
        context = request.app[CONTROL]
        address = client_ip(request, context.trusted_proxies)
        locked = context.failures.locked_for(address)
        if locked:
            return error_response(request, 429, "too many failed attempts, retry later",
                                  headers={"Retry-After": str(locked)})
        rule = policy_of(request.match_info.handler)
        try:
            principal = await context.authenticator.authenticate(
                request.headers.get("Authorization"), request.headers.get("X-Api-Key"))
            if principal is ANONYMOUS and not rule.optional:
                raise AuthError(401, "authentication required")
            if rule.scope is not None and principal is not ANONYMOUS \
                    and not principal.has_scope(rule.scope):
                raise AuthError(403, f"missing scope {rule.scope}")
            if rule.guild_admin:
                await _require_guild_admin(context, principal, request)
        except AuthError as exc:
            if exc.status == 503 and rule.optional:
                principal = ANONYMOUS
            else:
                if exc.status in (401, 403):
                    context.failures.fail(address)
                    await _audit_refusal(context, request, exc.status, exc.detail)
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
                if exc.status == 401:
                    headers["WWW-Authenticate"] = 'Bearer realm="api"'
                return error_response(request, exc.status, exc.detail, headers=headers)
        request[PRINCIPAL] = principal
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT_SECONDS):
                response = await handler(request)
        except TimeoutError:
            return error_response(request, 503, "the request took too long, retry later",
                                  headers={"Retry-After": "5"})
        return response

    return middleware


async def _require_guild_admin(context: ControlContext, principal: Principal,
                               request: web.Request) -> None:
    if principal.kind == "service":
        return  # scoped keys are trusted with the scope they hold
    if principal.kind != "user" or principal.subject is None:
        raise AuthError(403, "guild admins only")
    guild_id = path_id(request, "guild_id")
    async with context.database.session() as session:
        discord_id = await accounts.discord_id_for(session, principal.subject)
    if discord_id is None:
        raise AuthError(403, "link your Discord account first")
    if discord_id in context.owner_ids:
        return
    if context.guild_admins is not None and \
            await context.guild_admins.is_guild_admin(discord_id, guild_id):
        return
    raise AuthError(403, "guild admins only")


# --- Request helpers ---------------------------------------------------------------------

MAX_PAGE = 100


def path_id(request: web.Request, name: str) -> int:
    text = request.match_info.get(name, "")
    if not text.isdigit() or len(text) > 20 or int(text) >= 2**63:
        raise APIError(422, f"{name} must be a Discord id")
    return int(text)


def pagination(request: web.Request) -> tuple[int, int]:
    try:
        limit = int(request.query.get("limit", "20"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise APIError(422, "limit and offset must be integers") from None
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= 1_000_000:
        raise APIError(422, f"limit must be 1..{MAX_PAGE} and offset 0..1000000")
    return limit, offset


def page(items: list[Any], total: int, limit: int, offset: int) -> web.Response:
    return web.json_response({"items": items, "total": total, "limit": limit, "offset": offset})


M = TypeVar("M", bound=BaseModel)


async def read_model(request: web.Request, model: type[M]) -> M:
    if request.content_type != "application/json":
        raise APIError(415, "Content-Type must be application/json")
    return parse_json_body(model, await request.read())  # read capped at 1 MiB (413)


def actor_of(principal: Principal) -> str:
    return principal.subject or f"key:{principal.key_prefix}"


# --- Handlers ------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/api/v1/me")
@policy("me:read")
async def me(request: web.Request) -> web.Response:
    """Who the caller is: kind, scopes and, for a user, the linked Discord account."""
    principal = request[PRINCIPAL]
    body: dict[str, Any] = {"kind": principal.kind, "scopes": sorted(principal.scopes),
                            "subject": principal.subject, "discord_user_id": None}
    if principal.subject is not None:
        async with request.app[CONTROL].database.session() as session:
            discord_id = await accounts.discord_id_for(session, principal.subject)
        body["discord_user_id"] = str(discord_id) if discord_id is not None else None
    return web.json_response(body)


class GuildConfigChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    announcement_channel_id: int | None = Field(default=None, ge=1, lt=2**63)
    settings: dict[str, str | int | bool | None] | None = Field(default=None, max_length=50)


def _config_body(settings: guild_settings.GuildSettings) -> dict[str, Any]:
    channel = settings.announcement_channel_id
    return {"guild_id": str(settings.guild_id),
            "announcement_channel_id": str(channel) if channel is not None else None,
            "settings": settings.settings}


@routes.get("/api/v1/guilds/{guild_id}/config")
@policy("guilds:read", guild_admin=True)
async def get_guild_config(request: web.Request) -> web.Response:
    """A guild's bot settings (guild admins)."""
    database = request.app[CONTROL].database
    return web.json_response(_config_body(await guild_settings.get(
        database, path_id(request, "guild_id"))))


@routes.put("/api/v1/guilds/{guild_id}/config")
@policy("guilds:write", guild_admin=True)
async def put_guild_config(request: web.Request) -> web.Response:
    """Change a guild's bot settings; audit-logged with before and after (guild admins)."""
    change = await read_model(request, GuildConfigChange)
    updated = await guild_settings.update(
        request.app[CONTROL].database, path_id(request, "guild_id"),
        actor_id=actor_of(request[PRINCIPAL]), source="api",
        announcement_channel_id=change.announcement_channel_id,
        clear_announcement_channel="announcement_channel_id" in change.model_fields_set
        and change.announcement_channel_id is None,
        settings=dict(change.settings) if change.settings is not None else None)
    return web.json_response(_config_body(updated))


@routes.get("/api/v1/guilds/{guild_id}/audit")
@policy("audit:read", guild_admin=True)
async def get_guild_audit(request: web.Request) -> web.Response:
    """A guild's audit events, newest first, paginated (guild admins)."""
    limit, offset = pagination(request)
    entries, total = await guild_settings.recent_audit(
        request.app[CONTROL].database, path_id(request, "guild_id"), limit=limit, offset=offset)
    return page([entry.__dict__ for entry in entries], total, limit, offset)


class StatsSource(Protocol):
    def command_counts(self) -> dict[str, dict[str, int]]: ...


STATS = web.AppKey("command_stats", StatsSource)


@routes.get("/api/v1/commands/stats")
@policy("stats:read")
async def get_command_stats(request: web.Request) -> web.Response:
    """How often each slash command ran and failed since start, paginated."""
    limit, offset = pagination(request)
    counts = request.app[STATS].command_counts()
    items = [{"command": name, **values} for name, values in sorted(counts.items())]
    return page(items[offset:offset + limit], len(items), limit, offset)


@routes.post("/api/v1/drive/sync")
@policy("drive:sync")
async def post_drive_sync(request: web.Request) -> web.Response:
    """Start a Google Drive sync of the knowledge base."""
    raise APIError(503, "drive sync is not configured")


@routes.get("/api/v1/knowledge/search")
@policy("knowledge:read", optional=True)
async def get_knowledge_search(request: web.Request) -> web.Response:
    """Search the knowledge base (`q`)."""
    query = request.query.get("q", "").strip()
    if not 1 <= len(query) <= 200:
        raise APIError(422, "q must be 1 to 200 characters")
    raise APIError(503, "the knowledge base is not configured")


class RevocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")


@routes.post("/api/v1/auth/revocations")
@policy("auth:revoke")
async def post_revocation(request: web.Request) -> web.Response:
    """Revoke a user's (or one session's) tokens at once, not at their expiry."""
    change = await read_model(request, RevocationRequest)
    if change.subject is None and change.session_id is None:
        raise APIError(422, "give a subject or a session_id")
    await revoke(request.app[CONTROL].database, subject=change.subject,
                 session_id=change.session_id, reason="operator")
    return web.json_response({"status": "revoked"}, status=201)

