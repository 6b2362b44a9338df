"""The receive flow every webhook route runs: limits, signature, payload, replay guard, effect.

A delivery is recorded (its unique id is the replay guard) in the same transaction as its
effect, so it is applied exactly once; when the database is away the answer is 503 with
Retry-After and nothing is recorded, so the sender retries.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from edge.app_keys import DATABASE, METRICS, PREMIUM, REDIS, SECRETS, SETTINGS
from edge.body import (
    content_coding,
    decode_body,
    parse_json_body,
    read_raw_body,
    require_json,
)
from edge.errors import APIError, error_response
from edge.redis_breaker import RedisBreaker, RedisUnavailable
from store import audit, webhook_deliveries
from store.database import is_conflict, is_unavailable, is_unstorable
from store.webhook_deliveries import DeliveryRecord
from utils.logging import get_logger
from webhooks.signatures import Verified, WebhookRejected, body_hash, parse_secrets, verify
from webhooks.spec import WebhookContext, WebhookSpec

log = get_logger(__name__)

RETRY_AFTER_SECONDS = "5"
REPLAY_KEY_PREFIX = "webhook:seen:"
CONFLICT_ATTEMPTS = 3


def parse_payload(body: bytes, model: type[BaseModel]) -> BaseModel:
    try:
        return parse_json_body(model, body)
    except APIError as exc:
        raise WebhookRejected(exc.status, exc.detail, errors=exc.extra.get("errors")) from None


class ReplayCache:
    """Shares "already processed" across replicas through Redis (the database stays the truth).

    A key is written only after the delivery's transaction commits, so a crash before the commit
    can never make a retry look like a duplicate. Without Redis (not configured, or its breaker
    open) the database's unique delivery id is the guard; the breaker logs the outage once.
    """

    def __init__(self, redis: RedisBreaker | None, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def seen(self, key: str) -> bool:
        if self._redis is None:
            return False
        client = self._redis.client
        try:
            return bool(await self._redis.run(lambda: client.exists(REPLAY_KEY_PREFIX + key)))
        except RedisUnavailable:
            return False

    async def remember(self, key: str) -> None:
        if self._redis is None:
            return
        client = self._redis.client
        with contextlib.suppress(RedisUnavailable):
            await self._redis.run(lambda: client.set(REPLAY_KEY_PREFIX + key, "1", nx=True,
                                                     ex=self._ttl))


async def _record_and_apply(app: web.Application, spec: WebhookSpec, verified: Verified,
                            body: bytes, payload: BaseModel) -> dict[str, Any]:
    """Record the delivery and apply its effect in one transaction; a duplicate does nothing."""
    audit_details = {"webhook": spec.name, "delivery_id": verified.delivery_id,
                     "scheme": verified.scheme}
    database = app[DATABASE]
    context = WebhookContext(verified.delivery_id, app.get(PREMIUM))
    record = DeliveryRecord(spec.name, verified.delivery_id, body_hash(body), audit_details)
    if spec.apply_on_postgres is not None and database.backend == "postgresql":
        result = await spec.apply_on_postgres(database, record, payload, context)
        return {"status": "duplicate"} if result is None else {"status": "processed", **result}
    async with database.transaction() as session:
        # The replay record and its audit row first (one round trip on PostgreSQL); should the
        # effect fail, the transaction takes both back with it.
        if not await webhook_deliveries.record_with_audit(session, record):
            return {"status": "duplicate"}
        result = await spec.apply(session, payload, context)
    return {"status": "processed", **result}


async def receive(request: web.Request, spec: WebhookSpec) -> dict[str, Any]:
    """Every check in order; returns the 200 body or raises WebhookRejected."""
    app = request.app
    settings = app[SETTINGS]
    configured = spec.configured_secret(app[SECRETS])
    if configured is None:
        raise WebhookRejected(503, "webhook not configured")
    secrets = parse_secrets(configured)
    try:
        require_json(request)
        coding = content_coding(request)  # 415 before a byte of the body is read
        raw = await read_raw_body(request)
    except APIError as exc:
        raise WebhookRejected(exc.status, exc.detail, headers=exc.headers) from None
    # The signature covers the bytes as sent (compressed, when they were); inflate after.
    verified = verify(request.headers, raw, secrets, now=time.time(),
                      tolerance=settings.webhook_tolerance_seconds,
                      allow_body_only=settings.webhook_allow_body_only_signatures)
    try:
        body = decode_body(raw, coding)
    except APIError as exc:
        raise WebhookRejected(exc.status, exc.detail) from None
    payload = parse_payload(body, spec.payload_model)

    replay = ReplayCache(app[REDIS], ttl_seconds=2 * settings.webhook_tolerance_seconds)
    replay_key = f"{spec.name}:{verified.delivery_id}"
    if await replay.seen(replay_key):
        return {"status": "duplicate"}
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            outcome = await _apply_once(app, spec, verified, raw, payload)
            break
        except Exception as exc:
            # Another delivery inserted the same row (a new user, a new reflection) between
            # our read and our write; nothing was recorded. Again: the row is there now.
            if not is_conflict(exc):
                raise
            if attempt == CONFLICT_ATTEMPTS:
                raise WebhookRejected(409, "conflicts with a concurrent change, retry later",
                                      headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    await replay.remember(replay_key)
    return outcome


async def _apply_once(app: web.Application, spec: WebhookSpec, verified: Verified, raw: bytes,
                      payload: BaseModel) -> dict[str, Any]:
    try:
        return await _record_and_apply(app, spec, verified, raw, payload)
    except WebhookRejected:
        raise
    except Exception as exc:
        if is_unstorable(exc):  # text PostgreSQL cannot store: the same 422 on SQLite
            raise WebhookRejected(422, "text must not contain NUL characters") from None
        if not is_unavailable(exc):
            raise
        log.warning("webhook deferred: database unavailable", webhook=spec.name,
                    error_type=type(exc).__name__)
        raise WebhookRejected(503, "temporarily unavailable, retry later",
                              headers={"Retry-After": RETRY_AFTER_SECONDS}) from None


def webhook_handler(spec: WebhookSpec) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        metrics = request.app[METRICS]
        try:
            outcome = await receive(request, spec)
        except WebhookRejected as rejected:
            metrics.webhook_deliveries.labels(spec.name, str(rejected.status)).inc()
            # The reason is ours (never a secret or the payload); the pipeline sanitizes it too.
            log.info("webhook refused", webhook=spec.name, status=rejected.status,
                     reason=rejected.detail)
            await audit.record_best_effort(request.app[DATABASE], "webhook.rejected", details={
                "webhook": spec.name, "status": rejected.status, "reason": rejected.detail})
            extra = {"errors": rejected.errors} if rejected.errors else {}
            return error_response(request, rejected.status, rejected.detail,
                                  headers=rejected.headers, **extra)
        metrics.webhook_deliveries.labels(spec.name, outcome["status"]).inc()
        return web.json_response(outcome)

    handle.__name__ = f"webhook_{spec.name.replace('-', '_')}"
    return handle
