"""What the knowledge benchmarks share: a minimal PDF writer, a minimal Drive stand-in (token
endpoint, folder listing with pages, ranged downloads) and throw-away migrated databases.

Kept apart from tests/ on purpose: benchmarks do not import the test suite.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import secrets
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from store import migrate
from store.database import Database

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
KNOWLEDGE_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "knowledge"


def make_pdf(pages: Sequence[str]) -> bytes:
    """A PDF 1.4 with one page per string (Helvetica, wrapped lines)."""
    def escape(text: str) -> bytes:
        raw = text.encode("cp1252", errors="replace")
        return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")

    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * n} 0 R" for n in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   b"/Encoding /WinAnsiEncoding >>")
    for number, text in enumerate(pages):
        lines = textwrap.wrap(" ".join(text.split()), 95) or [""]
        stream = b"BT /F1 10 Tf 13 TL 50 800 Td\n" + b"\nT*\n".join(
            b"(" + escape(line) + b") Tj" for line in lines) + b"\nET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * number} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream
                       + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write(b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets))
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
              f"%%EOF\n".encode())
    return out.getvalue()


def knowledge_documents() -> dict[str, list[str]]:
    """The labelled set's documents (tests/data/knowledge/*.txt, pages split on `---`)."""
    return {path.stem + ".pdf": [page.strip() for page in path.read_text().split("\n---\n")]
            for path in sorted(KNOWLEDGE_DATA.glob("*.txt"))}


def knowledge_questions() -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = json.loads(
        (KNOWLEDGE_DATA / "questions.json").read_text())
    return questions


def service_account_json(token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "bench",
                       "private_key_id": secrets.token_hex(8), "private_key": pem,
                       "client_email": "bench@bench.iam.gserviceaccount.com",
                       "client_id": "1", "token_uri": token_uri})


class MiniDrive:
    """Token endpoint + Drive v3 folder listing and ranged media, on 127.0.0.1."""

    def __init__(self, folder_id: str = "bench-folder", page_size: int = 50) -> None:
        self.folder_id = folder_id
        self.page_size = page_size
        self.files: dict[str, tuple[str, bytes, str]] = {}  # id -> (name, content, modified)
        self.media_requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    def add(self, name: str, content: bytes) -> None:
        file_id = f"f{len(self.files):05d}"
        self.files[file_id] = (name, content, datetime.now(UTC).isoformat()[:23] + "Z")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/drive/v3/files", self._list)
        app.router.add_get("/drive/v3/files/{file_id}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not form.get("assertion"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": secrets.token_urlsafe(16),
                                  "expires_in": 3600, "token_type": "Bearer"})

    def _resource(self, file_id: str) -> dict[str, Any]:
        name, content, modified = self.files[file_id]
        return {"id": file_id, "name": name, "mimeType": "application/pdf",
                "md5Checksum": hashlib.md5(content).hexdigest(),  # noqa: S324 - Drive's
                "size": str(len(content)), "modifiedTime": modified}

    async def _list(self, request: web.Request) -> web.Response:
        token = request.query.get("pageToken")
        start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        ids = sorted(self.files)[start:start + self.page_size]
        body: dict[str, Any] = {"files": [self._resource(file_id) for file_id in ids]}
        if start + self.page_size < len(self.files):
            body["nextPageToken"] = base64.urlsafe_b64encode(
                str(start + self.page_size).encode()).decode()
        return web.json_response(body)

    async def _get(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id == self.folder_id:
            return web.json_response({"id": file_id,
                                      "mimeType": "application/vnd.google-apps.folder"})
        if request.query.get("alt") != "media":
            return web.json_response(self._resource(file_id))
        self.media_requests += 1
        content = self.files[file_id][1]
        first, _, last = request.headers.get("Range", "bytes=0-").removeprefix(
            "bytes=").partition("-")
        start, end = int(first), min(int(last or len(content) - 1), len(content) - 1)
        return web.Response(status=206, body=content[start:end + 1],
                            content_type="application/pdf",
                            headers={"Content-Range": f"bytes {start}-{end}/{len(content)}"})


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def temporary_database(backend: str) -> AsyncIterator[Database]:
    """An empty database of `backend` (sqlite or postgresql), migrated to head, then dropped."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            await migrate.upgrade_async(url)
            database = Database(url)
            try:
                yield database
            finally:
                await database.dispose()
        return
    name = f"bench_knowledge_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rpartition("/")[0].split("://", 1)[1]
    url = f"postgresql+asyncpg://{base}/{name}"
    try:
        await migrate.upgrade_async(url)
        database = Database(url)
        try:
            yield database
        finally:
            await database.dispose()
    finally:
        await asyncio.sleep(0)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
