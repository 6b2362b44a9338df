"""A loopback Supabase stand-in serving a JWKS, with keys to sign test tokens."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "authenticated"


class SigningKey:
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.kid = f"kid-{uuid.uuid4().hex[:8]}"
        self.private = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" \
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        algorithm_class = jwt.algorithms.ECAlgorithm if algorithm == "ES256" \
            else jwt.algorithms.RSAAlgorithm
        self.public_jwk: dict[str, Any] = json.loads(algorithm_class.to_jwk(
            self.private.public_key()))
        self.public_jwk.update({"kid": self.kid, "alg": algorithm, "use": "sig"})


class FakeSupabase:
    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.down = False
        self.hanging = False  # accept the request and never answer (until stop)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/auth/v1/.well-known/jwks.json", self._jwks)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.hanging:
            await self._release.wait()
        if self.down:
            return web.json_response({"error": "unavailable"}, status=503)
        return web.json_response({"keys": [key.public_jwk for key in self.keys]})

    def token(self, key: SigningKey | None = None, **overrides: Any) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        claims = {"sub": "user-1", "aud": AUDIENCE, "iss": f"{self.url}/auth/v1",
                  "iat": now, "exp": now + 600, "role": "authenticated",
                  "session_id": "session-1", **overrides}
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key.private, algorithm=key.algorithm,
                          headers={"kid": key.kid})
