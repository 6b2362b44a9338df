"""The control API for a dashboard, under /api/v1: identity, guild config, audit, stats.

Each handler declares its policy (`control.policy`); the policy middleware has authenticated
the caller before a handler runs, and `request[PRINCIPAL]` says who it is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from control.params import (
    Page,
    PageQuery,
    actor_of,
    body,
    path_id,
    query,
    reply,
    responds,
)
from control.policy import policy
from edge.app_keys import AUTH, KNOWLEDGE, PRINCIPAL, STATS
from edge.body import RequestBody
from edge.errors import APIError
from knowledge.service import KnowledgeBase, SyncNotConfigured
from store import accounts, guild_settings, revocations
from store.knowledge import SyncAlreadyRunning
from utils.ids import USER_ID_PATTERN, DiscordId, parse_discord_id, snowflakes_as_strings

routes = web.RouteTableDef()


class Identity(BaseModel):
    kind: str = Field(description="user or service")
    scopes: list[str]
    subject: str | None = Field(description="the Supabase user id of a user")
    discord_user_id: str | None = Field(pattern=r"^[0-9]{1,20}$",
                                        description="the linked Discord account of a user")


@routes.get("/api/v1/me")
@policy("me:read")
@responds(200, Identity)
async def me(request: web.Request) -> web.Response:
    """Who the caller is: kind, scopes and, for a user, the linked Discord account."""
    principal = request[PRINCIPAL]
    discord_id = None
    if principal.subject is not None:
        async with request.app[AUTH].database.session() as session:
            discord_id = await accounts.discord_id_for(session, principal.subject)
    return reply(Identity(kind=principal.kind, scopes=sorted(principal.scopes),
                          subject=principal.subject,
                          discord_user_id=str(discord_id) if discord_id is not None else None))


class GuildConfigChange(RequestBody):
    announcement_channel_id: DiscordId | None = None
    settings: dict[str, str | int | bool | None] | None = Field(default=None, max_length=50)


class GuildConfig(BaseModel):
    guild_id: str = Field(pattern=r"^[0-9]{1,20}$", description="a Discord id, as a string")
    announcement_channel_id: str | None = Field(pattern=r"^[0-9]{1,20}$")
    settings: dict[str, Any]


def _config(settings: guild_settings.GuildSettings) -> GuildConfig:
    channel = settings.announcement_channel_id
    return GuildConfig(guild_id=str(settings.guild_id),
                       announcement_channel_id=str(channel) if channel is not None else None,
                       settings=settings.settings)


@routes.get("/api/v1/guilds/{guild_id}/config")
@policy("guilds:read", guild_admin=True)
@responds(200, GuildConfig)
async def get_guild_config(request: web.Request) -> web.Response:
    """A guild's bot settings (guild admins)."""
    database = request.app[AUTH].database
    return reply(_config(await guild_settings.get(database, path_id(request, "guild_id"))))


@routes.put("/api/v1/guilds/{guild_id}/config")
@policy("guilds:write", guild_admin=True)
@responds(200, GuildConfig)
@body(GuildConfigChange)
async def put_guild_config(request: web.Request, change: GuildConfigChange) -> web.Response:
    """Change a guild's bot settings; audit-logged with before and after (guild admins)."""
    updated = await guild_settings.update(
        request.app[AUTH].database, path_id(request, "guild_id"),
        actor_id=actor_of(request[PRINCIPAL]), source="api",
        announcement_channel_id=change.announcement_channel_id,
        clear_announcement_channel="announcement_channel_id" in change.model_fields_set
        and change.announcement_channel_id is None,
        settings=dict(change.settings) if change.settings is not None else None)
    return reply(_config(updated))


class AuditEvent(BaseModel):
    id: int
    created_at: str
    event: str
    actor: str | None = Field(description="a short prefix of the actor's salted hash")
    details: dict[str, Any]


@routes.get("/api/v1/guilds/{guild_id}/audit")
@policy("audit:read", guild_admin=True)
@responds(200, Page[AuditEvent])
@query(PageQuery)
async def get_guild_audit(request: web.Request, page: PageQuery) -> web.Response:
    """A guild's audit events, newest first, paginated (guild admins)."""
    entries, total = await guild_settings.recent_audit(
        request.app[AUTH].database, path_id(request, "guild_id"), limit=page.limit,
        offset=page.offset)
    items = [AuditEvent.model_validate(snowflakes_as_strings(entry.__dict__))
             for entry in entries]
    return reply(Page[AuditEvent](items=items, total=total, limit=page.limit,
                                  offset=page.offset))


class CommandCount(BaseModel):
    command: str
    runs: int
    failures: int


@routes.get("/api/v1/commands/stats")
@policy("stats:read")
@responds(200, Page[CommandCount])
@query(PageQuery)
async def get_command_stats(request: web.Request, page: PageQuery) -> web.Response:
    """How often each slash command ran and failed since start, paginated."""
    counts = request.app[STATS].command_counts()
    items = [CommandCount(command=name, **values) for name, values in sorted(counts.items())]
    return reply(Page[CommandCount](items=items[page.offset:page.offset + page.limit],
                                    total=len(items), limit=page.limit, offset=page.offset))


MAX_QUERY_CHARS = 200


class SearchQuery(PageQuery):
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for")


class SearchItem(BaseModel):
    document: str = Field(description="the PDF's name in the Drive folder")
    page: int = Field(ge=1)
    snippet: str = Field(description="the passage around the match, plain text")
    score: float = Field(description="relevance, best first")


class SyncStarted(BaseModel):
    sync_id: str = Field(pattern=r"^[0-9]{1,20}$")


def _knowledge(request: web.Request) -> KnowledgeBase:
    return request.app[KNOWLEDGE]


@routes.post("/api/v1/drive/sync")
@policy("drive:sync")
@responds(202, SyncStarted)
async def post_drive_sync(request: web.Request) -> web.Response:
    """Start a Google Drive sync of the knowledge base: 202 with its id (409 while one runs)."""
    try:
        sync_id = await _knowledge(request).start_sync()
    except SyncNotConfigured:
        raise APIError(503, "drive sync is not configured (DRIVE_FOLDER_ID)") from None
    except SyncAlreadyRunning as running:
        running_id = str(running.sync_id) if running.sync_id is not None else None
        raise APIError(409, "a sync is already running", sync_id=running_id) from None
    return reply(SyncStarted(sync_id=str(sync_id)), status=202)


@routes.get("/api/v1/drive/sync/{sync_id}")
@policy("drive:sync")
@responds(200, dict[str, Any], "status, files_total, downloaded, skipped, removed, timings")
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
@responds(200, Page[SearchItem])
@query(SearchQuery)
async def get_knowledge_search(request: web.Request, search: SearchQuery) -> web.Response:
    """Search the knowledge base (`q`): items of {document, page, snippet, score}, best first."""
    hits, total = await _knowledge(request).search(search.q, search.limit, search.offset)
    return reply(Page[SearchItem](items=[SearchItem(**hit.as_dict()) for hit in hits],
                                  total=total, limit=search.limit, offset=search.offset))


class RevocationRequest(RequestBody):
    subject: str | None = Field(default=None, pattern=USER_ID_PATTERN)
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")


class Revoked(BaseModel):
    status: str = Field(pattern="^revoked$")


@routes.post("/api/v1/auth/revocations")
@policy("auth:revoke")
@responds(201, Revoked)
@body(RevocationRequest)
async def post_revocation(request: web.Request, change: RevocationRequest) -> web.Response:
    """Revoke a user's (or one session's) tokens at once, not at their expiry."""
    if change.subject is None and change.session_id is None:
        raise APIError(422, "give a subject or a session_id")
    await revocations.revoke(request.app[AUTH].database, subject=change.subject,
                             session_id=change.session_id, reason="operator")
    return reply(Revoked(status="revoked"), status=201)
