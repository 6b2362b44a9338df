"""The current values of the secret settings: literal, or resolved from Secret Manager.

A secret setting may hold `gsm:NAME` or `gsm:NAME@VERSION`. `SecretValues` resolves every such
reference at start (`resolve_all()` names each one that cannot be read, never a value), serves
the current values synchronously from memory (`value()`), and re-reads each reference when its
TTL runs out, so a rotated secret takes effect without a restart; during a rotation the previous
value stays available for one TTL (`accepted_values()`), so webhooks signed with the old secret
are still accepted while senders switch. `LiteralSecrets` is the same interface without Secret
Manager (tests, tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from pydantic import SecretStr

from utils.config import Settings
from utils.logging import get_logger
from utils.secret_manager import (
    InvalidReference,
    SecretError,
    SecretManager,
    SecretReference,
    SecretResult,
    is_reference,
    parse_reference,
)

log = get_logger(__name__)


# --- Settings that hold references ------------------------------------------------------------

# The key that reads Secret Manager cannot itself come from it.
NOT_RESOLVABLE = frozenset({"GOOGLE_CREDENTIALS_JSON"})


def secret_variables() -> tuple[str, ...]:
    """Every secret setting (SecretStr) that may hold a `gsm:` reference, by variable name.

    DISCORD_TOKEN, API_KEY, SUPABASE_JWT_SECRET, every *_WEBHOOK_SECRET, REDIS_URL, LLM_API_KEY
    (and any SecretStr setting added later).
    """
    names = []
    for field_name, info in Settings.model_fields.items():
        annotation = str(info.annotation)
        if "SecretStr" in annotation and field_name.upper() not in NOT_RESOLVABLE:
            names.append(field_name.upper())
    return tuple(names)


class SecretSource(Protocol):
    """Where the current value of a secret setting is read (literal or from Secret Manager)."""

    def value(self, variable: str) -> str | None: ...

    def accepted_values(self, variable: str) -> tuple[str, ...]: ...


class LiteralSecrets:
    """The secrets as configured, for code built without Secret Manager (tests, tools)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def value(self, variable: str) -> str | None:
        value = self._settings.secret(variable)
        return None if value is None or is_reference(value) else value

    def accepted_values(self, variable: str) -> tuple[str, ...]:
        value = self.value(variable)
        return (value,) if value else ()


class SecretValues:
    """The current values of a Settings' secrets, with `gsm:` references resolved.

    Owners call `await resolve_all()` once at start (problems are returned, one line per
    unreadable reference), then `start()` the background refresh and `await stop()` it at
    shutdown. `value(variable)` never blocks and never returns a `gsm:` string.
    """

    def __init__(self, settings: Settings, manager: SecretManager | None, *,
                 clock: Callable[[], float] | None = None, poll_seconds: float = 60.0,
                 previous_ttl: float | None = None) -> None:
        self._manager = manager
        self._clock = clock or (manager.clock if manager else time.monotonic)
        self._poll_seconds = poll_seconds
        self._previous_ttl = previous_ttl if previous_ttl is not None else (
            manager.ttl if manager else settings.secret_cache_ttl)
        self._negative_ttl = manager.negative_ttl if manager \
            else settings.secret_negative_cache_ttl
        self._literals: dict[str, str] = {}
        self._references: dict[str, SecretReference] = {}
        self._invalid: dict[str, str] = {}
        self._current: dict[str, str] = {}
        self._previous: dict[str, tuple[str, float]] = {}
        self._next_refresh: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        for variable in secret_variables():
            secret = getattr(settings, variable.lower())
            if not isinstance(secret, SecretStr):
                continue
            raw = secret.get_secret_value()
            if not is_reference(raw):
                self._literals[variable] = raw
                continue
            try:
                self._references[variable] = parse_reference(raw)
            except InvalidReference as exc:
                self._invalid[variable] = str(exc)

    @property
    def references(self) -> Mapping[str, SecretReference]:
        """Variables whose setting is a `gsm:` reference, and what they refer to."""
        return dict(self._references)

    def value(self, variable: str) -> str | None:
        """The current value of a secret setting (None: unset, or a reference not read yet)."""
        variable = variable.upper()
        if variable in self._references or variable in self._invalid:
            return self._current.get(variable)
        return self._literals.get(variable)

    def previous_value(self, variable: str) -> str | None:
        """The value a rotation replaced, for one TTL after the new one was read."""
        entry = self._previous.get(variable.upper())
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def accepted_values(self, variable: str) -> tuple[str, ...]:
        """The current value, then the previous one while it has not aged out."""
        values = [v for v in (self.value(variable), self.previous_value(variable)) if v]
        return tuple(dict.fromkeys(values))

    async def resolve_all(self) -> list[str]:
        """Read every reference now; one problem per reference that cannot be read."""
        problems = [f"{variable}: invalid Secret Manager reference ({reason})"
                    for variable, reason in sorted(self._invalid.items())]
        problems += await self._read(sorted(self._references))
        return problems

    async def refresh_due(self) -> list[str]:
        """Re-read the references whose TTL has run out (what the background task does)."""
        now = self._clock()
        due = [variable for variable in sorted(self._references)
               if self._next_refresh.get(variable, now) <= now]
        return await self._read(due)

    async def refresh_now(self) -> list[str]:
        """Drop every cached value and read every reference again (`/secrets refresh`)."""
        if self._manager is not None:
            self._manager.clear()
        return await self.resolve_all()

    async def _read(self, variables: Sequence[str]) -> list[str]:
        if not variables:
            return []
        manager = self._manager
        if manager is None:
            return [f"{variable}: refers to Secret Manager secret "
                    f"{self._references[variable].name!r} but GOOGLE_PROJECT_ID is not set"
                    for variable in variables]
        results = await asyncio.gather(
            *(manager.fetch(self._references[variable]) for variable in variables),
            return_exceptions=True)
        problems = []
        for variable, result in zip(variables, results, strict=True):
            reference = self._references[variable]
            if isinstance(result, SecretResult):
                self._apply(variable, result)
            elif isinstance(result, SecretError):
                self._next_refresh[variable] = self._clock() + self._negative_ttl
                problems.append(f"{variable}: secret {reference.name!r} could not be read "
                                f"from Secret Manager ({result.kind})")
            elif isinstance(result, BaseException):
                raise result
        return problems

    def _apply(self, variable: str, result: SecretResult) -> None:
        old = self._current.get(variable)
        if old is not None and old != result.value:
            self._previous[variable] = (old, self._clock() + self._previous_ttl)
            log.info("secret rotated", variable=variable,
                     secret_name=self._references[variable].name)
        self._current[variable] = result.value
        self._next_refresh[variable] = max(result.expires_at, self._clock())

    def _sleep_seconds(self) -> float:
        if not self._next_refresh:
            return self._poll_seconds
        wait = min(self._next_refresh.values()) - self._clock()
        return min(max(wait, 0.0), self._poll_seconds)

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh_due()
            except Exception as exc:  # never let the refresher die
                log.warning("secret refresh failed", error=type(exc).__name__)
            # At least a short pause, so a failing read is not retried in a tight loop.
            await asyncio.sleep(max(self._sleep_seconds(), min(0.05, self._poll_seconds)))

    def start(self) -> None:
        """Start the background refresh (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="secret-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
