"""HTTP/1.1 over a bare socket, for requests no client library sends: broken framing, bad
headers, half-sent requests, slow clients."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return RawResponse(status, headers, body)


async def exchange(port: int, data: bytes, *, limit_seconds: float = 10.0,
                   host: str = "127.0.0.1") -> RawResponse:
    """Send `data`, read until the server closes (or one full response arrived)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return parse_response(await read_response(reader, limit_seconds))
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader, limit_seconds: float = 10.0) -> bytes:
    """One response's bytes (by Content-Length), or what came before the server closed."""
    async with asyncio.timeout(limit_seconds):
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = await reader.read(65536)
            if not chunk:
                return received
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), None)
        while length is not None and len(body) < length:
            chunk = await reader.read(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None,
                  body: bytes = b"", *, content_length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    all_headers = dict(headers or {})
    if content_length and body and "Content-Length" not in all_headers:
        all_headers["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
