"""An OpenAI-compatible chat client over aiohttp (`POST {LLM_BASE_URL}/chat/completions`).

`LLM_BASE_URL` is the API root *including* the version path, as OpenAI's own SDKs take it:
`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama), `https://host/openai/v1`.

- Timeouts: a whole request (`complete`) or every silent gap of a stream (`stream`) is bounded
  by `timeout`; a timeout is not retried (the user is waiting) and raises `LLMTimeout`.
- 429 and 5xx are retried (`max_attempts` in all), waiting `Retry-After` / `retry-after-ms`
  when the server says, capped at `retry_after_cap`, else an exponential backoff with jitter.
- `stream()` is an async iterator of text deltas read from the server-sent events
  (`data: {...}` lines, ending with `data: [DONE]`); retries happen only before the first delta.
- Errors are typed (`LLMError` subclasses) and their text is built here from the status and the
  error's `type`/`code`, never from the server's message, so no error repeats the API key;
  aiohttp's exceptions (whose request info holds the Authorization header) are never chained.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from utils.config import Settings
from utils.retry_after import parse_retry_after
from utils.sanitize import mask_secrets

Message = dict[str, str]
ApiKey = str | Callable[[], str | None] | None


class LLMError(Exception):
    """The LLM could not answer; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LLMTimeout(LLMError):
    """No answer (or no next chunk of a stream) within the timeout."""


class LLMRateLimited(LLMError):
    """429 on every attempt."""


class LLMServerError(LLMError):
    """5xx on every attempt."""


class LLMRequestError(LLMError):
    """The request was refused (401, 403, 400, 404...): retrying will not help."""


class LLMConnectionError(LLMError):
    """The server could not be reached."""


class LLMResponseError(LLMError):
    """The answer was not what an OpenAI-compatible server sends."""


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str | None = None
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _error_code(body: bytes) -> str | None:
    """`error.type` or `error.code` of an error body, when it is a short identifier."""
    try:
        error = json.loads(body.decode("utf-8", "replace")).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and _TOKEN.fullmatch(value):
            return value
    return None


def _retry_after(headers: Any, cap: float) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return min(max(float(milliseconds) / 1000, 0.0), cap)
        except ValueError:
            pass
    seconds = parse_retry_after(headers.get("Retry-After"))
    return min(seconds, cap) if seconds is not None else None


class ChatClient:
    """Chat completions of `model` at `base_url`. One per process; `await close()` at the end.

    `api_key` may be a callable (such as `lambda: secret_values.value("LLM_API_KEY")`) so a
    rotated key is used from the next request on.
    """

    def __init__(self, base_url: str, model: str, api_key: ApiKey = None, *,
                 timeout: float = 30.0, max_attempts: int = 3, retry_after_cap: float = 20.0,
                 backoff_base: float = 0.5, max_tokens: int = 700, temperature: float = 0.2,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._retry_after_cap = retry_after_cap
        self._backoff_base = backoff_base
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._sleep = sleep
        self._session = session
        self._own_session = session is None
        self.retries = 0

    @classmethod
    def from_settings(cls, settings: Settings, api_key: ApiKey = None,
                      **options: Any) -> ChatClient | None:
        """The client for LLM_BASE_URL and LLM_MODEL, or None when either is unset.

        Without `api_key`, LLM_API_KEY is used as configured (pass a callable reading
        SecretValues when it is a `gsm:` reference).
        """
        if not settings.llm_base_url or not settings.llm_model:
            return None
        if api_key is None and settings.llm_api_key is not None:
            api_key = settings.llm_api_key.get_secret_value()
        options.setdefault("timeout", settings.llm_timeout_seconds)
        return cls(settings.llm_base_url, settings.llm_model, api_key, **options)

    def _key(self) -> str | None:
        key = self._api_key() if callable(self._api_key) else self._api_key
        if key is not None and key.startswith("gsm:"):
            return None  # an unresolved reference is never sent as a key
        return key

    def _scrub(self, text: str) -> str:
        key = self._key()
        if key:
            text = text.replace(key, "***")
        return mask_secrets(text)

    def _session_for(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    def _payload(self, messages: Sequence[Message], stream: bool,
                 options: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model, "messages": list(messages),
            "max_tokens": options.pop("max_tokens", self._max_tokens),
            "temperature": options.pop("temperature", self._temperature),
        }
        payload.update(options)
        if stream:
            payload["stream"] = True
        return payload

    def _backoff(self, attempt: int) -> float:
        ceiling = self._backoff_base * 2 ** (attempt - 1)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter

    async def _open(self, payload: dict[str, Any], stream: bool) -> aiohttp.ClientResponse:
        """POST with retries; the 2xx response is returned open (the caller releases it)."""
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream else "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                        sock_read=self._timeout) if stream \
            else aiohttp.ClientTimeout(total=self._timeout)
        session = self._session_for()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await session.post(self.url, json=payload, headers=headers,
                                              timeout=timeout)
            except TimeoutError:
                raise LLMTimeout(f"no answer within {self._timeout:g} s") from None
            except aiohttp.ClientError as exc:
                if attempt >= self._max_attempts:
                    raise LLMConnectionError(
                        f"LLM server unreachable ({type(exc).__name__})") from None
                self.retries += 1
                await self._sleep(self._backoff(attempt))
                continue
            if response.status < 300:
                return response
            status = response.status
            try:
                body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                body = b""
            finally:
                response.release()
            code = _error_code(body)
            detail = f"LLM server answered {status}" + (f" ({code})" if code else "")
            retryable = status == 429 or status >= 500
            if not retryable:
                raise LLMRequestError(self._scrub(detail), status)
            if attempt >= self._max_attempts:
                error = LLMRateLimited if status == 429 else LLMServerError
                raise error(self._scrub(detail + f" after {attempt} attempts"), status)
            wait = _retry_after(response.headers, self._retry_after_cap)
            self.retries += 1
            await self._sleep(wait if wait is not None else self._backoff(attempt))

    async def complete(self, messages: Sequence[Message], **options: Any) -> ChatResult:
        """One whole answer."""
        response = await self._open(self._payload(messages, False, dict(options)), False)
        try:
            body = await response.json(content_type=None)
        except TimeoutError:
            raise LLMTimeout(f"no answer within {self._timeout:g} s") from None
        except (aiohttp.ClientError, ValueError):
            raise LLMResponseError("the LLM answer is not JSON") from None
        finally:
            response.release()
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise LLMResponseError("the LLM answer has no choices[0].message") from None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return ChatResult(str(text), choice.get("finish_reason"), body.get("model"),
                          {k: int(v) for k, v in usage.items() if isinstance(v, int)})

    async def stream(self, messages: Sequence[Message], **options: Any) -> AsyncIterator[str]:
        """The answer as it is written: an async iterator of text deltas."""
        response = await self._open(self._payload(messages, True, dict(options)), True)
        try:
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                raise LLMResponseError("the LLM server did not answer with a stream")
            while True:
                try:
                    raw = await response.content.readline()
                except TimeoutError:
                    raise LLMTimeout(f"the stream stalled for {self._timeout:g} s") from None
                except aiohttp.ClientError as exc:
                    raise LLMConnectionError(
                        f"the stream broke ({type(exc).__name__})") from None
                if not raw:
                    raise LLMResponseError("the stream ended without [DONE]")
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments (":"), event names, ids
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                delta = self._delta(data)
                if delta:
                    yield delta
        finally:
            response.release()

    def _delta(self, data: str) -> str | None:
        try:
            event = json.loads(data)
        except ValueError:
            raise LLMResponseError("a stream event is not JSON") from None
        if not isinstance(event, dict):
            raise LLMResponseError("a stream event is not an object")
        if "error" in event:
            code = _error_code(data.encode())
            raise LLMServerError(self._scrub("the stream reported an error"
                                             + (f" ({code})" if code else "")))
        choices = event.get("choices") or []
        if not choices:
            return None  # e.g. a final usage-only event
        content = (choices[0].get("delta") or {}).get("content")
        return content if isinstance(content, str) else None

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
