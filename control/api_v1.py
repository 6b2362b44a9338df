"""The control API for a dashboard, under /api/v1: identity, guild config, audit, stats.

Each handler declares its policy (`control.policy`); the policy middleware has authenticated
the caller before a handler runs, and `request[PRINCIPAL]` says who it is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from control.params import actor_of, page, pagination, path_id, read_model
from control.policy import policy
from edge.app_keys import AUTH, KNOWLEDGE, PRINCIPAL, STATS
from edge.errors import APIError
from knowledge.service import KnowledgeBase, SyncNotConfigured
from store import accounts, guild_settings, revocations
from store.knowledge import SyncAlreadyRunning
from utils.ids import USER_ID_PATTERN, parse_discord_id, snowflakes_as_strings

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
    return page([snowflakes_as_strings(entry.__dict__) for entry in entries], total, limit,
                offset)


@routes.get("/api/v1/commands/stats")
@policy("stats:read")
async def get_command_stats(request: web.Request) -> web.Response:
    """How often each slash command ran and failed since start, paginated."""
    limit, offset = pagination(request)
    counts = request.app[STATS].command_counts()
    items = [{"command": name, **values} for name, values in sorted(counts.items())]
    return page(items[offset:offset + limit], len(items), limit, offset)


MAX_QUERY_CHARS = 200


def _knowledge(request: web.Request) -> KnowledgeBase:
    return request.app[KNOWLEDGE]


@routes.post("/api/v1/drive/sync")
@policy("drive:sync")
async def post_drive_sync(request: web.Request) -> web.Response:
    """Start a Google Drive sync of the knowledge base: 202 with its id (409 while one runs)."""
    try:
        sync_id = await _knowledge(request).start_sync()
    except SyncNotConfigured:
        raise APIError(503, "drive sync is not configured (DRIVE_FOLDER_ID)") from None
    except SyncAlreadyRunning as running:
        running_id = str(running.sync_id) if running.sync_id is not None else None
        raise APIError(409, "a sync is already running", sync_id=running_id) from None
    return web.json_response({"sync_id": str(sync_id)}, status=202)


@routes.get("/api/v1/drive/sync/{sync_id}")
@policy("drive:sync")
async def get_drive_sync(request: web.Request) -> web.Response:
    """A sync's status (running, done, failed), files_total, downloaded, skipped, removed,
    timings."""
    sync_id = parse_discord_id(request.match_info["sync_id"])  # a positive ASCII integer
    info = await _knowledge(request).sync_status(sync_id) if sync_id is not None else None
    if info is None:
        raise APIError(404, "no such sync")
    return web.json_response({**info.as_dict(), "sync_id": str(info.id)})


@routes.get("/api/v1/knowledge/search")
@policy("knowledge:read")
async def get_knowledge_search(request: web.Request) -> web.Response:
    """Search the knowledge base (`q`): items of {document, page, snippet, score}, best first."""
    query = request.query.get("q", "").strip()
    if not 1 <= len(query) <= MAX_QUERY_CHARS:
        raise APIError(422, f"q must be 1 to {MAX_QUERY_CHARS} characters")
    limit, offset = pagination(request)
    hits, total = await _knowledge(request).search(query, limit, offset)
    return page([hit.as_dict() for hit in hits], total, limit, offset)


class RevocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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

