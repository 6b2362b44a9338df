"""The policy of /api/v1: who may call each route, enforced by one middleware.

Every route declares its policy with `@policy(...)`: the scope it needs, whether anonymous
callers are welcome, whether the caller must administer the guild in the path. The middleware
authenticates, enforces the policy, bounds the handler to 30 s, audits refusals and locks out an
address that keeps failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from control.params import path_id
from edge.app_keys import AUTH, PRINCIPAL
from edge.auth import ANONYMOUS, AuthContext, AuthError, Principal
from edge.client_ip import client_ip
from edge.errors import error_response
from store import accounts

HANDLER_TIMEOUT_SECONDS = 30.0
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


def control_api_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/v1/") or \
                request.match_info.http_exception is not None:
            response: web.StreamResponse = await handler(request)
            return response
        context = request.app[AUTH]
        address = client_ip(request, context.trusted_proxies)
        locked = context.failures.locked_for(address)
        if locked:
            return error_response(request, 429, "too many failed attempts, retry later",
                                  headers={"Retry-After": str(locked)})
        rule = policy_of(request.match_info.handler)
        try:
            principal = await _authorize(context, rule, request)
        except AuthError as exc:
            if exc.status == 503 and rule.optional:
                principal = ANONYMOUS
            else:
                return await _refuse(context, request, address, exc)
        request[PRINCIPAL] = principal
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT_SECONDS):
                response = await handler(request)
        except TimeoutError:
            return error_response(request, 503, "the request took too long, retry later",
                                  headers={"Retry-After": "5"})
        return response

    return middleware


async def _authorize(context: AuthContext, rule: Policy, request: web.Request) -> Principal:
    principal = await context.authenticator.authenticate(
        request.headers.get("Authorization"), request.headers.get("X-Api-Key"))
    if principal is ANONYMOUS and not rule.optional:
        raise AuthError(401, "authentication required")
    if rule.scope is not None and principal is not ANONYMOUS \
            and not principal.has_scope(rule.scope):
        raise AuthError(403, f"missing scope {rule.scope}")
    if rule.guild_admin:
        await _require_guild_admin(context, principal, request)
    return principal


async def _refuse(context: AuthContext, request: web.Request, address: str,
                  exc: AuthError) -> web.Response:
    if exc.status in (401, 403):
        resource = request.match_info.route.resource
        await context.record_refusal(address, status=exc.status, reason=exc.detail,
                                     path=resource.canonical if resource else request.path)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return error_response(request, exc.status, exc.detail, headers=headers)


async def _require_guild_admin(context: AuthContext, principal: Principal,
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
