"""Who may read the operator endpoints (`/api/observability`, its history, `/metrics`).

From an address in ALLOWED_IPS (when set), one of: the static API_KEY in `X-Api-Key`, a scoped
key holding `observability:read` in `X-Api-Key`, or a status-page session cookie
(`edge.sessions`, issued for the API_KEY at `/status/sign-in`). Answers: 403 outside
ALLOWED_IPS, 401 on a wrong or unknown key, 403 for a scoped key without the scope, 503 when no
API_KEY is configured and no scoped key was presented. A wrong key counts toward the same
per-address lockout as /api/v1 (and is audited); a locked-out address gets 429 here too. A
missing key does not count: a status page whose session ran out is no guess.
"""

from __future__ import annotations

from aiohttp import web

from edge.app_keys import AUTH, SECRETS, SESSIONS, SETTINGS
from edge.client_ip import client_ip, in_networks
from edge.errors import APIError
from edge.sessions import cookie_name
from store import api_keys

OBSERVABILITY_SCOPE = "observability:read"


def check_address(request: web.Request) -> None:
    """403 from outside ALLOWED_IPS (when set)."""
    settings = request.app[SETTINGS]
    if settings.allowed_ips and not in_networks(
            client_ip(request, settings.trusted_proxies), settings.allowed_ips):
        raise APIError(403, "address not allowed")


def session_valid(request: web.Request) -> bool:
    sessions = request.app[SESSIONS]
    name = cookie_name(request.app[SETTINGS].is_production)
    return sessions is not None and sessions.valid(request.cookies.get(name))


async def require_observer(request: web.Request) -> None:
    """Return when the caller may read the operator endpoints; raise APIError otherwise."""
    check_address(request)
    context = request.app[AUTH]
    address = client_ip(request, context.trusted_proxies)
    locked = context.failures.locked_for(address)
    if locked:
        raise APIError(429, "too many failed attempts, retry later",
                       headers={"Retry-After": str(locked)})
    try:
        await _check_credentials(request)
    except APIError as exc:
        # A wrong key here is as much a guess at the all-scopes API_KEY as one on /api/v1.
        if exc.status == 401 and request.headers.get("X-Api-Key"):
            await context.record_refusal(address, status=401, reason=exc.detail,
                                         path=request.path)
        raise


async def _check_credentials(request: web.Request) -> None:
    presented = request.headers.get("X-Api-Key", "")
    if presented:
        if request.app[AUTH].authenticator.static_key_matches(presented):
            return
        if api_keys.KEY_PATTERN.fullmatch(presented):
            key = await api_keys.find_valid_key(request.app[AUTH].database, presented)
            if key is None:
                raise APIError(401, "invalid service key")
            if OBSERVABILITY_SCOPE not in key.scopes.split():
                raise APIError(403, f"missing scope {OBSERVABILITY_SCOPE}")
            return
    elif session_valid(request):
        return
    if request.app[SECRETS].value("API_KEY") is None:
        raise APIError(503, "no service key is configured (API_KEY)")
    if not presented:
        raise APIError(401, "missing X-Api-Key header")
    raise APIError(401, "invalid service key")
