"""Loopback stand-ins for Google: the OAuth token endpoint, Drive v3 and Secret Manager (REST).

One aiohttp server on 127.0.0.1 (port 0) serves all three, so the real client libraries
(google-auth, google-api-python-client, google-cloud-secret-manager) talk to it over real
sockets. It checks what Google checks where it matters here:

- `/token` (the key's `token_uri`) verifies the JWT assertion's RS256 signature with the service
  account's public key, its `iss`, `exp` and `aud` (`https://oauth2.googleapis.com/token`, what
  google-auth always sends and Google checks), and hands out bearer tokens;
- Drive answers only those bearer tokens, understands exactly the listing query the client
  must send (folder, PDF, not trashed), pages results, serves byte ranges of files, and checks
  the shared-drive flags;
- Secret Manager accepts a self-signed JWT (signature, `iss`, a cloud-platform scope or the
  service's audience) and answers `:access` for versions (`latest` or a number), 404 for unknown
  secrets, 403 for denied ones.

`fail_next(kind, *statuses)` makes the next requests of a kind (`list`, `get`, `media`,
`token`, `secret`; or `media:<file id>` for one file) answer those statuses (with
`Retry-After`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.loopback import serve_on_loopback

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive.readonly"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# google-auth always addresses the grant assertion to Google's token endpoint, whatever the
# key's token_uri (where the assertion is POSTed); Google's endpoint checks exactly this.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FOLDER_MIME_TYPE = "application/vnd.google-apps.folder"
LIST_QUERY = "'{folder}' in parents and mimeType = 'application/pdf' and trashed = false"


@dataclass
class ServiceAccountKey:
    """A fresh RSA key in Google's service-account JSON format (token_uri chosen by the test)."""

    email: str = "knowledge-bot@test-project.iam.gserviceaccount.com"
    project_id: str = "test-project"
    private_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    key_id: str = field(default_factory=lambda: secrets.token_hex(20))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def info(self, token_uri: str) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        return {
            "type": "service_account", "project_id": self.project_id,
            "private_key_id": self.key_id, "private_key": pem, "client_email": self.email,
            "client_id": "1234567890", "token_uri": token_uri,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "universe_domain": "googleapis.com",
        }

    def json(self, token_uri: str) -> str:
        return json.dumps(self.info(token_uri))


@dataclass
class DriveItem:
    id: str
    name: str
    content: bytes
    parents: set[str]
    mime_type: str = "application/pdf"
    trashed: bool = False
    modified_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def md5(self) -> str:
        return hashlib.md5(self.content).hexdigest()  # noqa: S324 - Drive's checksum

    def resource(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mimeType": self.mime_type,
                "md5Checksum": self.md5, "size": str(len(self.content)),
                "modifiedTime": self.modified_time.isoformat().replace("+00:00", "Z")}


def _error(status: int, message: str, reason: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message,
                             "status": {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                                        404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}.get(
                                            status, "INTERNAL")}
    if reason:
        error["errors"] = [{"reason": reason, "message": message}]
    return web.json_response({"error": error}, status=status, headers=headers)


class GoogleStandIn:
    """Token endpoint + Drive v3 + Secret Manager on one loopback server."""

    def __init__(self, key: ServiceAccountKey | None = None, *, folder_id: str = "folder-1",
                 page_size: int = 3, shared_drive_id: str | None = None) -> None:
        self.key = key or ServiceAccountKey()
        self.folder_id = folder_id
        self.page_size = page_size
        self.shared_drive_id = shared_drive_id
        self.items: dict[str, DriveItem] = {}
        self.secrets: dict[str, list[bytes]] = {}
        self.denied_secrets: set[str] = set()
        self.secret_delay = 0.0
        self.secret_reads_in_flight = 0
        self.most_secret_reads_in_flight = 0  # how many reads a client had open at once
        self.tokens: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.secret_calls: Counter[str] = Counter()
        self.downloads: Counter[str] = Counter()  # completed (first-range) downloads per file
        # Files a listing leaves out while saying so (`incompleteSearch`), as Drive may.
        self.missing_from_listing: set[str] = set()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.failures: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
        self.token_claims: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._next_id = 0

    # --- Server --------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/drive/v3/files", self._list)
        app.router.add_get("/drive/v3/files/{file_id}", self._get)
        app.router.add_get("/v1/{path:.*}", self._secret)
        self._runner, self.url = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def drive_endpoint(self) -> str:
        return self.url  # a bare origin: the client appends /drive/v3/

    def key_json(self) -> str:
        return self.key.json(self.token_uri)

    def fail_next(self, kind: str, *statuses: int, retry_after: str | None = None) -> None:
        self.failures[kind].extend((status, retry_after) for status in statuses)

    def _injected(self, kind: str, file_id: str | None = None) -> web.Response | None:
        queue = self.failures.get(f"{kind}:{file_id}") if file_id else None
        queue = queue or self.failures.get(kind)
        if not queue:
            return None
        status, retry_after = queue.pop(0)
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        reason = {403: "rateLimitExceeded", 404: "notFound",
                  429: "rateLimitExceeded"}.get(status, "backendError")
        return _error(status, "injected failure", reason, headers)

    # --- OAuth token endpoint ------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.calls["token"] += 1
        injected = self._injected("token")
        if injected is not None:
            return injected
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(str(form.get("assertion", "")), self.key.public_key,
                                algorithms=["RS256"], audience=TOKEN_AUDIENCE,
                                issuer=self.key.email, options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant",
                                      "error_description": type(exc).__name__}, status=400)
        self.token_claims.append(claims)
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 3600,
                                  "token_type": "Bearer", "scope": claims.get("scope", "")})

    def _authorized_for_drive(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    # --- Drive v3 ------------------------------------------------------------------------------

    def add_pdf(self, name: str, content: bytes, *, parent: str | None = None,
                file_id: str | None = None) -> str:
        self._next_id += 1
        item_id = file_id or f"file{self._next_id:04d}"
        self.items[item_id] = DriveItem(item_id, name, content, {parent or self.folder_id})
        return item_id

    def update(self, file_id: str, content: bytes) -> None:
        item = self.items[file_id]
        item.content = content
        item.modified_time = datetime.now(UTC) + timedelta(seconds=1)

    def rename(self, file_id: str, name: str) -> None:
        item = self.items[file_id]
        item.name = name
        item.modified_time = datetime.now(UTC) + timedelta(seconds=1)

    def trash(self, file_id: str) -> None:
        self.items[file_id].trashed = True

    def delete(self, file_id: str) -> None:
        del self.items[file_id]

    def move(self, file_id: str, new_parent: str) -> None:
        self.items[file_id].parents = {new_parent}

    async def _list(self, request: web.Request) -> web.Response:
        self.calls["list"] += 1
        self.requests.append(("list", request.path, dict(request.query)))
        if not self._authorized_for_drive(request):
            return _error(401, "Request had invalid authentication credentials.")
        injected = self._injected("list")
        if injected is not None:
            return injected
        query = request.query
        if query.get("q") != LIST_QUERY.format(folder=self.folder_id):
            return _error(400, "unexpected query", "invalidParameter")
        if query.get("supportsAllDrives") != "true" \
                or query.get("includeItemsFromAllDrives") != "true":
            return _error(400, "shared drives not requested", "invalidParameter")
        expected_corpora = "drive" if self.shared_drive_id else "user"
        if query.get("corpora") != expected_corpora or (
                self.shared_drive_id and query.get("driveId") != self.shared_drive_id):
            return _error(400, "wrong corpora", "invalidParameter")
        fields = query.get("fields", "")
        for name in ("nextPageToken", "id", "name", "md5Checksum", "modifiedTime", "size",
                     "mimeType"):
            if name not in fields:
                return _error(400, f"fields lacks {name}", "invalidParameter")
        matching = sorted(
            (item for item in self.items.values()
             if self.folder_id in item.parents and not item.trashed
             and item.mime_type == "application/pdf"
             and item.id not in self.missing_from_listing), key=lambda item: item.id)
        size = min(int(query.get("pageSize", "100")), self.page_size)
        token = query.get("pageToken")
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        page = matching[start:start + size]
        body: dict[str, Any] = {"kind": "drive#fileList",
                                "incompleteSearch": bool(self.missing_from_listing),
                                "files": [item.resource() for item in page]}
        if start + size < len(matching):
            body["nextPageToken"] = base64.urlsafe_b64encode(
                str(start + size).encode()).decode()
        return web.json_response(body)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        media = request.query.get("alt") == "media"
        kind = "media" if media else "get"
        self.calls[kind] += 1
        self.requests.append((kind, request.path, dict(request.query)))
        if not self._authorized_for_drive(request):
            return _error(401, "Request had invalid authentication credentials.")
        injected = self._injected(kind, file_id)
        if injected is not None:
            return injected
        if request.query.get("supportsAllDrives") != "true":
            return _error(400, "supportsAllDrives missing", "invalidParameter")
        if file_id == self.folder_id and not media:
            folder: dict[str, Any] = {"id": file_id, "mimeType": FOLDER_MIME_TYPE}
            if self.shared_drive_id:
                folder["driveId"] = self.shared_drive_id
            return web.json_response(folder)
        item = self.items.get(file_id)
        if item is None:
            return _error(404, f"File not found: {file_id}.", "notFound")
        if not media:
            return web.json_response(item.resource())
        return self._ranged(request, item)

    def _ranged(self, request: web.Request, item: DriveItem) -> web.Response:
        content = item.content
        header = request.headers.get("Range")
        if not header:
            self.downloads[item.id] += 1
            return web.Response(body=content, content_type="application/pdf")
        first, _, last = header.removeprefix("bytes=").partition("-")
        start = int(first)
        end = min(int(last) if last else len(content) - 1, len(content) - 1)
        if start == 0:
            self.downloads[item.id] += 1
        if start >= len(content):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(content)}"})
        return web.Response(status=206, body=content[start:end + 1],
                            content_type="application/pdf",
                            headers={"Content-Range": f"bytes {start}-{end}/{len(content)}"})

    # --- Secret Manager ------------------------------------------------------------------------

    def set_secret(self, name: str, value: str) -> int:
        """Add a version (rotation); returns its number."""
        self.secrets.setdefault(name, []).append(value.encode())
        return len(self.secrets[name])

    def _authorized_for_secrets(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(header[7:], self.key.public_key, algorithms=["RS256"],
                                issuer=self.key.email, options={"verify_aud": False,
                                                                "require": ["exp", "iat"]})
        except jwt.PyJWTError:
            return False
        self.token_claims.append(claims)
        scopes = str(claims.get("scope", "")).split()
        return CLOUD_PLATFORM_SCOPE in scopes \
            or claims.get("aud") == "https://secretmanager.googleapis.com/"

    async def _secret(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        parts = path.removesuffix(":access").split("/")
        if not path.endswith(":access") or len(parts) != 6 or parts[0] != "projects" \
                or parts[2] != "secrets" or parts[4] != "versions":
            return _error(404, "no such method")
        project, name, version = parts[1], parts[3], parts[5]
        self.calls["secret"] += 1
        self.secret_calls[name] += 1
        if not self._authorized_for_secrets(request):
            return _error(401, "Request had invalid authentication credentials.")
        injected = self._injected("secret")
        if injected is not None:
            return injected
        if self.secret_delay:
            self.secret_reads_in_flight += 1
            self.most_secret_reads_in_flight = max(self.most_secret_reads_in_flight,
                                                   self.secret_reads_in_flight)
            try:
                await asyncio.sleep(self.secret_delay)
            finally:
                self.secret_reads_in_flight -= 1
        if project != self.key.project_id:
            return _error(403, "Permission denied on project")
        if name in self.denied_secrets:
            return _error(403, f"Permission 'secretmanager.versions.access' denied for {name}")
        versions = self.secrets.get(name)
        if not versions:
            return _error(404, f"Secret [projects/{project}/secrets/{name}] not found.")
        number = len(versions) if version == "latest" else int(version)
        if not 1 <= number <= len(versions):
            return _error(404, f"Secret Version [{path}] not found.")
        data = versions[number - 1]
        return web.json_response({
            "name": f"projects/{project}/secrets/{name}/versions/{number}",
            "payload": {"data": base64.b64encode(data).decode()},
        })


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
