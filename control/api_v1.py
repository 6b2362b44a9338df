"""The control API for a dashboard, under /api/v1: identity, guild config, audit, stats.

Each handler declares its policy (`control.policy`); the policy middleware has authenticated
the caller before a handler runs, and `request[PRINCIPAL]` says who it is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from control.params import actor_of, page, pagination, path_id, read_model
from control.policy import policy
from edge.app_keys import AUTH, PRINCIPAL, STATS
from edge.body import RequestBody
from edge.errors import APIError
from store import accounts, guild_settings, revocations
from utils.ids import USER_ID_PATTERN, DiscordId

routes = web.RouteTableDef()


@routes.get("/api/v1/me")
@policy("me:read")
async def me(request: web.Request) -> web.Response:
    """Who the caller is: kind, scopes and, for a user, the linked Discord account."""
    principal = request[PRINCIPAL]
    body: dict[str, Any] = {"kind": principal.kind, "scopes": sorted(principal.scopes),
                            "subject": principal.subject, "discord_user_id": None}
    if principal.subject is not None:
        async with request.app[AUTH].database.session() as session:
            discord_id = await accounts.discord_id_for(session, principal.subject)
        body["discord_user_id"] = str(discord_id) if discord_id is not None else None
    return web.json_response(body)


class GuildConfigChange(RequestBody):
    announcement_channel_id: DiscordId | None = None
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
    database = request.app[AUTH].database
    return web.json_response(_config_body(await guild_settings.get(
        database, path_id(request, "guild_id"))))


@routes.put("/api/v1/guilds/{guild_id}/config")
@policy("guilds:write", guild_admin=True)
async def put_guild_config(request: web.Request) -> web.Response:
    """Change a guild's bot settings; audit-logged with before and after (guild admins)."""
    change = await read_model(request, GuildConfigChange)
    updated = await guild_settings.update(
        request.app[AUTH].database, path_id(request, "guild_id"),
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
        request.app[AUTH].database, path_id(request, "guild_id"), limit=limit, offset=offset)
    return page([entry.__dict__ for entry in entries], total, limit, offset)


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


class RevocationRequest(RequestBody):
    subject: str | None = Field(default=None, pattern=USER_ID_PATTERN)
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")


@routes.post("/api/v1/auth/revocations")
@policy("auth:revoke")
async def post_revocation(request: web.Request) -> web.Response:
    """Revoke a user's (or one session's) tokens at once, not at their expiry."""
    change = await read_model(request, RevocationRequest)
    if change.subject is None and change.session_id is None:
        raise APIError(422, "give a subject or a session_id")
    await revocations.revoke(request.app[AUTH].database, subject=change.subject,
                 session_id=change.session_id, reason="operator")
    return web.json_response({"status": "revoked"}, status=201)

