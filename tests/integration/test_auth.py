"""Authentication of the control API: JWT attack suite against a loopback JWKS, API keys,
scopes, revocation, and the refusal of repeat offenders."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization

import api
from edge.app_keys import AUTH
from edge.auth import AuthError, JwksCache
from edge.lockout import FailureTracker
from store import api_keys
from store.database import Database
from tests.support.jwks_server import FakeSupabase, SigningKey
from utils.config import Settings

Client = TestClient[web.Request, web.Application]
API_KEY = "static-service-key-0123456789abcdef"
HS_SECRET = "legacy-hs256-secret-0123456789abcdefghij"


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
                 database: Database, supabase: FakeSupabase) -> Client:
    settings = make_settings(supabase_url=supabase.url, api_key=API_KEY,
                             rate_limit_read="1000/minute", rate_limit_write="1000/minute")
    return await aiohttp_client(api.create_app(settings, database=database))  # type: ignore[no-any-return]


async def me(client: Client, token: str) -> int:
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_forged(key: bytes, claims: dict[str, Any], kid: str) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def test_valid_es256_and_rs256_tokens(client: Client, supabase: FakeSupabase) -> None:
    for key in supabase.keys:
        response = await client.get("/api/v1/me", headers={
            "Authorization": f"Bearer {supabase.token(key)}"})
        assert response.status == 200
        body = await response.json()
        assert (body["kind"], body["subject"]) == ("user", "user-1")


async def test_attack_suite(client: Client, supabase: FakeSupabase) -> None:
    client.app[AUTH].failures = FailureTracker(threshold=1000)  # lockout tested below
    key = supabase.keys[0]
    now = int(time.time())
    claims = {"sub": "user-1", "aud": "authenticated", "iss": f"{supabase.url}/auth/v1",
              "iat": now, "exp": now + 600}
    public_pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}." \
               f"{b64(json.dumps(claims).encode())}."
    attacks = {
        "alg none": unsigned,
        "alg None": unsigned.replace(b64(b'{"alg": "none"'), b64(b'{"alg": "None"')),
        "HS256 with the public key (PEM)": hs256_forged(public_pem, claims, key.kid),
        "HS256 with the public key (JWK)": hs256_forged(
            json.dumps(key.public_jwk).encode(), claims, key.kid),
        "wrong aud": supabase.token(aud="service_role"),
        "wrong iss": supabase.token(iss="https://evil.example/auth/v1"),
        "expired": supabase.token(exp=now - 1),
        "future nbf": supabase.token(nbf=now + 60),
        "no exp": supabase.token(exp=None),
        "no sub": supabase.token(sub=None),
        "tampered payload": supabase.token().rsplit(".", 2)[0][:-2] + "xx."
        + supabase.token().rsplit(".", 1)[1],
        "signed by a stranger": jwt.encode(claims, SigningKey("ES256").private,
                                           algorithm="ES256", headers={"kid": key.kid}),
        "not a JWT": "hello",
        "ES256 header on an RSA key": jwt.encode(claims, supabase.keys[1].private,
                                                 algorithm="RS256",
                                                 headers={"kid": key.kid}),
    }
    for name, token in attacks.items():
        assert await me(client, token) == 401, name


async def test_hs256_path_uses_only_the_legacy_secret(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings],
        database: Database, supabase: FakeSupabase) -> None:
    settings = make_settings(supabase_url=supabase.url, supabase_jwt_secret=HS_SECRET)
    client = await aiohttp_client(api.create_app(settings, database=database))
    now = int(time.time())
    claims = {"sub": "user-2", "aud": "authenticated", "iss": f"{supabase.url}/auth/v1",
              "iat": now, "exp": now + 600}
    assert await me(client, jwt.encode(claims, HS_SECRET, algorithm="HS256")) == 200
    public_pem = supabase.keys[0].private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert await me(client, hs256_forged(public_pem, claims, supabase.keys[0].kid)) == 401


async def test_unknown_kid_flood_fetches_the_jwks_at_most_once(
        client: Client, supabase: FakeSupabase) -> None:
    client.app[AUTH].failures = FailureTracker(threshold=1000)
    assert await me(client, supabase.token()) == 200
    fetched = supabase.fetches
    strangers = [SigningKey("ES256") for _ in range(30)]
    for stranger in strangers:
        assert await me(client, supabase.token(stranger)) == 401
    assert supabase.fetches - fetched <= 1


async def test_jwks_down_is_503_with_retry_after(client: Client,
                                                 supabase: FakeSupabase) -> None:
    supabase.down = True
    response = await client.get("/api/v1/me", headers={
        "Authorization": f"Bearer {supabase.token()}"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert supabase.fetches == 3  # one try and two retries
    search = await client.get("/api/v1/knowledge/search?q=risk", headers={
        "Authorization": f"Bearer {supabase.token()}"})
    assert search.status == 503  # no route serves anonymous callers while the provider is away
    assert (await search.json())["detail"] == "authentication provider unreachable"


async def test_a_hanging_jwks_costs_waiting_requests_one_shared_refresh(
        supabase: FakeSupabase) -> None:
    supabase.hanging = True
    cache = JwksCache(f"{supabase.url}/auth/v1/.well-known/jwks.json", timeout_seconds=0.2)
    started = time.monotonic()

    async def one_request() -> float:
        with pytest.raises(AuthError) as refused:
            await cache.key(supabase.keys[0].kid)
        assert refused.value.status == 503
        return time.monotonic() - started

    waits = await asyncio.gather(*(one_request() for _ in range(4)))
    # One refresh (3 x 0.2 s + 2 x 0.3 s) answers all four: not one round each behind the lock.
    assert max(waits) < 2.0, waits
    assert supabase.fetches == 3


async def test_after_a_failed_jwks_refresh_unknown_keys_are_503_at_once_for_a_while(
        supabase: FakeSupabase) -> None:
    now = [1000.0]
    cache = JwksCache(f"{supabase.url}/auth/v1/.well-known/jwks.json", clock=lambda: now[0])
    supabase.down = True
    with pytest.raises(AuthError, match="provider unreachable"):
        await cache.key(supabase.keys[0].kid)
    assert supabase.fetches == 3
    now[0] += 2
    with pytest.raises(AuthError) as refused:
        await cache.key(supabase.keys[0].kid)
    assert (refused.value.status, refused.value.retry_after) == (503, 3)
    assert supabase.fetches == 3  # refused without asking the endpoint again
    supabase.down = False
    now[0] += 3
    assert (await cache.key(supabase.keys[0].kid)).key_id == supabase.keys[0].kid


async def test_cached_keys_keep_working_while_the_jwks_is_down(supabase: FakeSupabase) -> None:
    now = [1000.0]
    cache = JwksCache(f"{supabase.url}/auth/v1/.well-known/jwks.json", clock=lambda: now[0])
    known = supabase.keys[0].kid
    await cache.key(known)
    supabase.down = True
    now[0] += 3601  # past the hour: a refresh is due and fails
    assert (await cache.key(known)).key_id == known
    with pytest.raises(AuthError) as refused:
        await cache.key(SigningKey("ES256").kid)  # maybe a rotated key: cannot tell, so 503
    assert refused.value.status == 503
    assert (await cache.key(known)).key_id == known
    assert supabase.fetches == 4  # the first fetch, then one failed round of three


async def test_key_rotation_is_picked_up_after_the_refetch_interval(
        supabase: FakeSupabase) -> None:
    now = [1000.0]
    cache = JwksCache(f"{supabase.url}/auth/v1/.well-known/jwks.json", clock=lambda: now[0])
    await cache.key(supabase.keys[0].kid)
    rotated = SigningKey("ES256")
    supabase.keys.append(rotated)
    now[0] += 10
    with pytest.raises(AuthError, match="unknown signing key"):
        await cache.key(rotated.kid)  # within 30 s of the last fetch: no refetch
    now[0] += 21
    assert (await cache.key(rotated.kid)).key_id == rotated.kid
    assert supabase.fetches == 2


async def test_revoked_user_is_refused_at_once_despite_the_cache(
        client: Client, supabase: FakeSupabase) -> None:
    token = supabase.token()
    assert await me(client, token) == 200  # now in the positive cache
    response = await client.post("/api/v1/auth/revocations", json={"subject": "user-1"},
                                 headers={"X-Api-Key": API_KEY})
    assert response.status == 201
    assert await me(client, token) == 401
    await asyncio.sleep(1.1)  # `iat` has whole seconds: sign in again a second later
    assert await me(client, supabase.token()) == 200


async def test_tokens_living_longer_than_a_revocation_is_kept_are_refused(
        client: Client, supabase: FakeSupabase) -> None:
    now = int(time.time())
    assert await me(client, supabase.token(exp=now + 24 * 3600)) == 200
    for token in (supabase.token(exp=now + 7 * 24 * 3600),  # outlives its revocation
                  supabase.token(iat=None)):  # lifetime unknown
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401
        assert "longer than a revocation is kept" in (await response.json())["detail"]


async def test_writing_a_revocation_deletes_the_expired_ones(
        client: Client, database: Database) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from store.models import TokenRevocation, utcnow

    async with database.transaction() as session:
        session.add(TokenRevocation(subject="erased-user", revoked_at=utcnow() - timedelta(days=2),
                                    expires_at=utcnow() - timedelta(days=1), reason="erased"))
    response = await client.post("/api/v1/auth/revocations", json={"subject": "user-1"},
                                 headers={"X-Api-Key": API_KEY})
    assert response.status == 201
    async with database.session() as session:
        subjects = (await session.scalars(select(TokenRevocation.subject))).all()
    assert subjects == ["user-1"]


async def test_api_keys_static_scoped_and_refused(client: Client, database: Database) -> None:
    assert (await client.get("/api/v1/me", headers={"X-Api-Key": API_KEY})).status == 200
    scoped = await api_keys.create_key(database, name="stats", scopes=("stats:read",),
                                       expires_in=None)
    headers = {"X-Api-Key": scoped.plaintext}
    assert (await client.get("/api/v1/commands/stats", headers=headers)).status == 200
    denied = await client.post("/api/v1/drive/sync", headers=headers)
    assert denied.status == 403
    assert (await denied.json())["detail"] == "missing scope drive:sync"
    assert (await client.get("/api/v1/me", headers={"X-Api-Key": "bk_nope"})).status == 401
    await api_keys.revoke_key(database, scoped.prefix)
    assert (await client.get("/api/v1/commands/stats", headers=headers)).status == 401


async def test_no_credentials_is_401_with_a_challenge(client: Client) -> None:
    response = await client.get("/api/v1/me")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_repeated_failures_lock_the_address_out(client: Client) -> None:
    for _ in range(10):
        assert (await client.get("/api/v1/me", headers={"X-Api-Key": "wrong"})).status == 401
    locked = await client.get("/api/v1/me", headers={"X-Api-Key": API_KEY})
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0


async def test_denials_of_an_authenticated_caller_do_not_lock_the_address_out(
        client: Client, supabase: FakeSupabase, database: Database) -> None:
    from tests.conftest import link_discord
    await link_discord(database, "user-1", 111111111111111111)
    bearer = {"Authorization": f"Bearer {supabase.token()}"}
    for guild in range(10):  # a dashboard opening guilds the member does not administer
        response = await client.get(f"/api/v1/guilds/{10**17 + guild}/config", headers=bearer)
        assert response.status == 403
    assert await me(client, supabase.token()) == 200


async def test_refusals_are_audited(client: Client, database: Database) -> None:
    from sqlalchemy import select

    from store.models import AuditLog

    await client.get("/api/v1/me", headers={"X-Api-Key": "wrong"})
    async with database.session() as session:
        rows = (await session.scalars(select(AuditLog))).all()
    assert [(row.event, row.details["status"]) for row in rows] == [("api.auth.refused", 401)]
    assert "wrong" not in json.dumps([row.details for row in rows])


async def test_service_keys_are_compared_in_constant_time(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await client.get("/api/v1/me", headers={"X-Api-Key": API_KEY})).status == 200
    assert (API_KEY.encode(), API_KEY.encode()) in compared


async def test_database_down_during_authentication_is_503(
        aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]) -> None:
    dead = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        client = await aiohttp_client(api.create_app(make_settings(api_key=API_KEY),
                                                     database=dead))
        response = await client.get("/api/v1/me", headers={"X-Api-Key": "bk_abcdefgh_" + "x" * 43})
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
    finally:
        await dead.dispose()
