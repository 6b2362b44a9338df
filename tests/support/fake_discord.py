"""A loopback stand-in for Discord: REST API plus gateway websocket.

The unmodified discord.py client logs in (GET /users/@me), asks for the gateway (GET
/gateway/bot), connects, identifies, receives READY and GUILD_CREATE, and then gets whatever
events a test dispatches (INTERACTION_CREATE, ...). Everything the bot sends back (interaction
callbacks, messages, DMs, command syncs) is recorded for the test to read. Only the routes this
project uses are implemented; any other route answers 404 and is recorded too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = 900000000000000001
APPLICATION_ID = 900000000000000002
ADMINISTRATOR = 1 << 3
_ids = itertools.count(910000000000000000)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json.
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json"})


# Discord's embed limits: a message (or interaction reply) breaking one is refused with 400.
EMBED_LIMITS = {"title": 256, "description": 4096, "field_name": 256, "field_value": 1024,
                "fields": 25, "total": 6000}


def embed_problem(embed: dict[str, Any]) -> str | None:
    """What Discord would refuse in this embed, or None."""
    fields = embed.get("fields") or []
    sizes = {"title": len(embed.get("title") or ""),
             "description": len(embed.get("description") or ""), "fields": len(fields),
             "field_name": max((len(field.get("name") or "") for field in fields), default=0),
             "field_value": max((len(field.get("value") or "") for field in fields), default=0)}
    sizes["total"] = (sizes["title"] + sizes["description"]
                      + sum(len(field.get("name") or "") + len(field.get("value") or "")
                            for field in fields)
                      + len((embed.get("footer") or {}).get("text") or "")
                      + len((embed.get("author") or {}).get("name") or ""))
    over = [name for name, size in sizes.items() if size > EMBED_LIMITS[name]]
    return f"embed {over[0]} over {EMBED_LIMITS[over[0]]}" if over else None


def _refuse_embeds(body: Any) -> web.Response | None:
    """Discord's 400 for a body (message or interaction reply) holding an embed over a limit."""
    if not isinstance(body, dict):
        return None
    payload = body.get("data") if isinstance(body.get("data"), dict) else body
    for embed in payload.get("embeds") or []:
        problem = embed_problem(embed)
        if problem is not None:
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": {"embeds": {"_errors": [{"message": problem}]}}}, 400)
    return None


def snowflake() -> str:
    return str(next(_ids))


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name,
            "avatar": None, "bot": bot, "public_flags": 0}


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    query: dict[str, str]
    response: Any = None
    token: str = ""  # the bot token it came with: which process sent it


@dataclass
class FakeGuild:
    id: int
    owner_id: int
    channel_ids: list[int]
    members: dict[int, list[int]] = field(default_factory=dict)  # user id -> role ids
    roles: dict[int, int] = field(default_factory=dict)  # role id -> permissions

    def payload(self) -> dict[str, Any]:
        everyone = {"id": str(self.id), "name": "@everyone", "permissions": "0", "position": 0,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False,
                    "flags": 0}
        roles = [everyone] + [
            {**everyone, "id": str(role_id), "name": f"role-{role_id}",
             "permissions": str(permissions), "position": 1}
            for role_id, permissions in self.roles.items()]
        return {
            "id": str(self.id), "name": f"guild-{self.id}", "icon": None,
            "owner_id": str(self.owner_id), "roles": roles, "emojis": [], "stickers": [],
            "features": [], "member_count": len(self.members) + 1, "large": False,
            "unavailable": False, "premium_tier": 0, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "nsfw_level": 0, "preferred_locale": "en-US", "system_channel_flags": 0,
            "joined_at": datetime.now(UTC).isoformat(), "threads": [], "presences": [],
            "voice_states": [], "stage_instances": [], "guild_scheduled_events": [],
            "channels": [{"id": str(channel_id), "type": 0, "name": f"channel-{channel_id}",
                          "position": index, "permission_overwrites": [],
                          "guild_id": str(self.id)}
                         for index, channel_id in enumerate(self.channel_ids)],
            "members": [{"user": user_payload(BOT_ID, "bot", bot=True), "roles": [],
                         "joined_at": datetime.now(UTC).isoformat(), "deaf": False,
                         "mute": False, "flags": 0}],
        }


class FakeDiscord:
    """Start with `await fake.start()`; point the bot at `fake.api_base`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.guilds: dict[int, FakeGuild] = {}
        self.users: dict[int, str] = {}
        self.failures: list[tuple[re.Pattern[str], int, int]] = []  # path, status, error code
        self.identified: list[list[int]] = []
        # Messages created per channel, and by nonce: with `enforce_nonce`, Discord answers a
        # repeated nonce (same channel, a few minutes) with the message it already created.
        self.created: dict[str, list[dict[str, Any]]] = {}
        self._by_nonce: dict[tuple[str, str], dict[str, Any]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._shards: dict[int, int] = {}  # id(socket) -> shard id
        self.resumed = 0  # RESUME frames answered
        self.delay = 0.0  # seconds every REST answer waits (a slow Discord)
        self._sessions: dict[str, int] = {}  # session id -> shard id
        self._sequence = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- control -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def add_guild(self, guild_id: int, *, owner_id: int = 1, channel_ids: tuple[int, ...] = (),
                  ) -> FakeGuild:
        guild = FakeGuild(guild_id, owner_id, list(channel_ids) or [guild_id + 1])
        self.guilds[guild_id] = guild
        return guild

    def fail(self, path_pattern: str, status: int, code: int = 0) -> None:
        """Answer every request whose path matches with this error (until cleared)."""
        self.failures.append((re.compile(path_pattern), status, code))

    async def dispatch(self, event: str, data: dict[str, Any], *, shard: int | None = None
                       ) -> None:
        """Send an event on every gateway connection, or only on the one of `shard`."""
        payload = {"op": 0, "t": event, "s": next(self._sequence), "d": data}
        for socket in list(self._sockets):
            if shard is None or self._shards.get(id(socket)) == shard:
                await socket.send_str(json.dumps(payload))

    async def drop_gateway(self) -> int:
        """Close every gateway connection as a network failure would (code 1006-like: the
        client may resume); returns how many were dropped."""
        dropped = list(self._sockets)
        for socket in dropped:
            await socket.close(code=4000, message=b"dropped by the test")
        return len(dropped)

    async def wait_for(self, predicate: Callable[[Recorded], bool],
                       limit_seconds: float = 10.0) -> Recorded:
        """The first recorded request matching `predicate`, waiting for it if needed."""
        async def find() -> Recorded:
            async with self._changed:
                while True:
                    for request in self.requests:
                        if predicate(request):
                            return request
                    await self._changed.wait()

        return await asyncio.wait_for(find(), limit_seconds)

    def sent(self, method: str, pattern: str) -> list[Recorded]:
        regex = re.compile(pattern)
        return [r for r in self.requests if r.method == method and regex.fullmatch(r.path)]

    def interaction(self, name: str, *, user_id: int, guild_id: int | None = None,
                    options: list[dict[str, Any]] | None = None, permissions: int = 0,
                    roles: tuple[int, ...] = (), subcommand: str | None = None,
                    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a slash command."""
        command_options = options or []
        if subcommand is not None:
            command_options = [{"name": subcommand, "type": 1, "options": command_options}]
        data: dict[str, Any] = {
            "id": snowflake(), "application_id": str(APPLICATION_ID), "type": 2,
            "token": f"token-{snowflake()}", "version": 1, "locale": "en-US",
            "app_permissions": str((1 << 53) - 1), "entitlements": [],
            "authorizing_integration_owners": {}, "context": 0 if guild_id else 1,
            "attachment_size_limit": 8 * 1024 * 1024,
            "data": {"id": snowflake(), "name": name, "type": 1, "options": command_options},
        }
        user = user_payload(user_id, f"user-{user_id}")
        if guild_id is not None:
            guild = self.guilds[guild_id]
            channel_id = guild.channel_ids[0]
            data.update({
                "guild_id": str(guild_id), "guild_locale": "en-US",
                "channel_id": str(channel_id),
                "channel": {"id": str(channel_id), "type": 0, "guild_id": str(guild_id),
                            "name": f"channel-{channel_id}"},
                "member": {"user": user, "roles": [str(role) for role in roles],
                           "permissions": str(permissions), "joined_at":
                           datetime.now(UTC).isoformat(), "deaf": False, "mute": False,
                           "flags": 0},
            })
        else:
            dm_channel = snowflake()
            data.update({"channel_id": dm_channel, "user": user,
                         "channel": {"id": dm_channel, "type": 1}})
        return data

    def component_click(self, message_id: str, custom_id: str, *, user_id: int,
                        guild_id: int) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a button press on a message."""
        data = self.interaction("unused", user_id=user_id, guild_id=guild_id)
        guild = self.guilds[guild_id]
        data.update({
            "type": 3,
            "data": {"custom_id": custom_id, "component_type": 2},
            "message": {"id": message_id, "channel_id": str(guild.channel_ids[0]),
                        "content": "", "author": user_payload(BOT_ID, "bot", bot=True),
                        "embeds": [], "attachments": [], "mentions": [], "mention_roles": [],
                        "pinned": False, "mention_everyone": False, "tts": False,
                        "timestamp": datetime.now(UTC).isoformat(), "type": 0, "flags": 0,
                        "components": []},
        })
        return data

    # --- gateway -------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                if frame["op"] == 1:
                    await socket.send_json({"op": 11})
                elif frame["op"] == 2:
                    await self._identify(socket, frame["d"])
                elif frame["op"] == 6:
                    self.resumed += 1
                    shard = self._sessions.get(str(frame["d"].get("session_id")))
                    if shard is not None:
                        self._shards[id(socket)] = shard
                    await socket.send_json({"op": 0, "t": "RESUMED",
                                            "s": next(self._sequence), "d": {}})
        finally:
            self._sockets.remove(socket)
        return socket

    async def _identify(self, socket: web.WebSocketResponse, identify: dict[str, Any]) -> None:
        shard = identify.get("shard") or [0, 1]
        self.identified.append(shard)
        self._shards[id(socket)] = shard[0]
        session_id = f"session-{snowflake()}"
        self._sessions[session_id] = shard[0]
        guilds = [guild for guild in self.guilds.values()
                  if (guild.id >> 22) % shard[1] == shard[0]]
        await socket.send_json({"op": 0, "t": "READY", "s": next(self._sequence), "d": {
            "v": 10, "user": user_payload(BOT_ID, "bot", bot=True),
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session_id, "resume_gateway_url": self.gateway_url,
            "shard": shard, "application": {"id": str(APPLICATION_ID), "flags": 0},
        }})
        for guild in guilds:
            await socket.send_json({"op": 0, "t": "GUILD_CREATE", "s": next(self._sequence),
                                    "d": guild.payload()})

    # --- REST ----------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = json.loads(raw)
            elif request.content_type.startswith("multipart/"):
                body = {"multipart": raw.decode("utf-8", "replace")}
        recorded = Recorded(request.method, path, body, dict(request.query),
                            token=request.headers.get("Authorization", ""))
        response = next((_json({"message": "refused by test", "code": code}, status=status)
                         for pattern, status, code in self.failures if pattern.fullmatch(path)),
                        None) or _refuse_embeds(body) or self._answer(request.method, path, body)
        if isinstance(response.body, bytes):
            recorded.response = json.loads(response.body)
        async with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
        return response

    def _message(self, channel_id: str, body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        return {"id": snowflake(), "channel_id": channel_id, "type": 0,
                "content": body.get("content") or "", "embeds": body.get("embeds") or [],
                "author": user_payload(BOT_ID, "bot", bot=True), "attachments": [],
                "mentions": [], "mention_roles": [], "pinned": False, "tts": False,
                "mention_everyone": False, "timestamp": datetime.now(UTC).isoformat(),
                "flags": body.get("flags", 0), "components": body.get("components") or []}

    def _create_message(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        nonce = body.get("nonce")
        key = (channel_id, str(nonce))
        if nonce is not None and body.get("enforce_nonce") and key in self._by_nonce:
            return self._by_nonce[key]
        message = {**self._message(channel_id, body), "nonce": nonce}
        self.created.setdefault(channel_id, []).append(message)
        if nonce is not None:
            self._by_nonce[key] = message
        return message

    def _answer(self, method: str, path: str, body: Any) -> web.Response:
        if method == "GET" and path == "/users/@me":
            return _json(user_payload(BOT_ID, "bot", bot=True))
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json({"id": str(APPLICATION_ID), "name": "bot", "icon": None,
                          "description": "", "rpc_origins": [], "bot_public": False,
                          "bot_require_code_grant": False, "owner": user_payload(1, "owner"),
                          "team": None, "verify_key": "0" * 64, "flags": 0, "summary": ""})
        if method == "GET" and path == "/gateway/bot":
            return _json({"url": self.gateway_url, "shards": 1,
                                      "session_start_limit": {"total": 1000, "remaining": 1000,
                                                              "reset_after": 0,
                                                              "max_concurrency": 1}})
        if match := re.fullmatch(r"/users/(\d+)", path):
            user_id = int(match.group(1))
            return _json(user_payload(user_id, self.users.get(user_id, "member")))
        if method == "POST" and path == "/users/@me/channels":
            recipient = int(body["recipient_id"])
            return _json({"id": str(recipient + 7), "type": 1, "recipients": [
                user_payload(recipient, self.users.get(recipient, "member"))]})
        if match := re.fullmatch(r"/channels/(\d+)", path):
            channel_id = int(match.group(1))
            guild = next((g for g in self.guilds.values() if channel_id in g.channel_ids), None)
            if guild is None:
                return _json({"message": "Unknown Channel", "code": 10003},
                                         status=404)
            return _json({"id": str(channel_id), "type": 0, "guild_id":
                                      str(guild.id), "name": f"channel-{channel_id}",
                                      "position": 0, "permission_overwrites": []})
        if method == "POST" and (match := re.fullmatch(r"/channels/(\d+)/messages", path)):
            return _json(self._create_message(match.group(1), body or {}))
        if re.fullmatch(r"/applications/\d+(/guilds/\d+)?/commands", path):
            commands = body if method == "PUT" else []
            return _json([{**command, "id": snowflake(), "application_id":
                                       str(APPLICATION_ID), "version": snowflake()}
                                      for command in commands])
        if method == "POST" and re.fullmatch(r"/interactions/\d+/[^/]+/callback", path):
            data = (body or {}).get("data") or {}
            message = self._message("0", data)
            return _json({
                "interaction": {"id": path.split("/")[2], "type": 2,
                                "response_message_id": message["id"],
                                "response_message_loading": body.get("type") == 5,
                                "response_message_ephemeral": bool(data.get("flags", 0) & 64)},
                "resource": {"type": body.get("type", 4), "message": message},
            })
        if re.fullmatch(r"/webhooks/\d+/[^/]+(/messages/[^/]+)?", path):
            return _json(self._message("0", body))
        return _json({"message": "404: Not Found", "code": 0}, status=404)
