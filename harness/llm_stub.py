"""A loopback OpenAI-compatible server: `POST /v1/chat/completions`, plain or `stream: true`.

Answers are scripted per request with `script(...)`; without a script it answers `default_text`.
Script steps:
- `Reply(text)`: a normal answer (or, for a streaming request, `text` split into deltas);
- `Status(code, retry_after=..., body=...)`: an error status (429, 500...) with Retry-After;
- `Hang(seconds)`: wait before answering (timeouts);
- `BrokenStream(deltas)`: some deltas, then the connection ends without `[DONE]`.
Every request's headers and JSON body are kept in `requests`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.loopback import serve_on_loopback


@dataclass
class Reply:
    text: str
    deltas: list[str] | None = None  # how a stream splits it (default: by word)
    pause: float = 0.0  # seconds between streamed deltas (a model that thinks while it writes)


@dataclass
class Status:
    code: int
    retry_after: str | None = None
    body: dict[str, Any] = field(default_factory=lambda: {
        "error": {"message": "stub error", "type": "server_error", "code": None}})


@dataclass
class Hang:
    seconds: float


@dataclass
class BrokenStream:
    deltas: list[str]


Step = Reply | Status | Hang | BrokenStream


class LLMStub:
    def __init__(self, default_text: str = "The answer, from the documents.") -> None:
        self.default_text = default_text
        self.steps: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def base_url(self) -> str:
        """What LLM_BASE_URL holds: the API root with `/v1`."""
        return f"{self.url}/v1"

    def script(self, *steps: Step) -> None:
        self.steps.extend(steps)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner, self.url = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "json": body})
        step: Step = self.steps.pop(0) if self.steps else Reply(self.default_text)
        while isinstance(step, Hang):
            await asyncio.sleep(step.seconds)
            step = self.steps.pop(0) if self.steps else Reply(self.default_text)
        if isinstance(step, Status):
            headers = {"Retry-After": step.retry_after} if step.retry_after else None
            return web.json_response(step.body, status=step.code, headers=headers)
        stream = bool(body.get("stream"))
        if isinstance(step, BrokenStream):
            return await self._stream(request, body, step.deltas, finish=False)
        if not stream:
            return web.json_response({
                "id": "chatcmpl-stub", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": step.text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            })
        deltas = step.deltas or [word + " " for word in step.text.split(" ")]
        return await self._stream(request, body, deltas, finish=True, pause=step.pause)

    async def _stream(self, request: web.Request, body: dict[str, Any], deltas: list[str],
                      *, finish: bool, pause: float = 0.0) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b": keep-alive comment\n\n")
        first = {"id": "c1", "object": "chat.completion.chunk", "model": body.get("model"),
                 "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        await response.write(f"data: {json.dumps(first)}\n\n".encode())
        for delta in deltas:
            if pause:
                await asyncio.sleep(pause)
            chunk = {"id": "c1", "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {"content": delta}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if not finish:
            # End the connection abruptly: no [DONE].
            assert request.transport is not None
            request.transport.close()
            return response
        last = {"id": "c1", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(last)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
