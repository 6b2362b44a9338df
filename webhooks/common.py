"""What every webhook shares: signature checks, limits, the replay guard, durable effects.

The first half is pure (bytes and headers in, a verdict out), so it can be tested exhaustively;
the second half is the aiohttp flow every webhook route runs.

Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`; the signed content is
`id.timestamp.body` (raw bytes), HMAC-SHA256, base64; entries `v1,<sig>` separated by spaces or
by ", " (as Supabase sends). Body-only compatibility: `X-Hub-Signature-256` or
`X-Webhook-Signature` with `sha256=<hex>` of the raw body, keyed with the secret's UTF-8 bytes.

Every rejection is a `WebhookRejected` with a 4xx status and a short reason safe to show.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import redis.asyncio as redis_asyncio
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.database import insert_ignoring_conflicts, is_unavailable
from store.models import WebhookDelivery, utcnow
from utils.app_keys import DATABASE, METRICS, REDIS, SETTINGS
from utils.config import Settings
from utils.errors import APIError, error_response, parse_json_body
from utils.logging import get_logger

MAX_HEADER_LENGTH = 4096
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_BODY_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
BODY_SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Webhook-Signature")


class WebhookRejected(Exception):
    """A delivery refused with `status`; `detail` is shown to the sender."""

    def __init__(self, status: int, detail: str, *, headers: Mapping[str, str] | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = errors


@dataclass(frozen=True)
class WebhookSecret:
    """One configured secret in both key forms."""

    standard_key: bytes  # for Standard Webhooks: base64-decoded after `whsec_`
    raw_key: bytes  # for body-only signatures: the configured text's UTF-8 bytes


@dataclass(frozen=True)
class Verified:
    delivery_id: str  # the webhook-id, or `sha256:<body hash>` for body-only signatures
    scheme: str  # "standard" or "body-only"


@functools.lru_cache(maxsize=64)  # the configured text is fixed: decode it once, not per request
def parse_secrets(configured: str) -> tuple[WebhookSecret, ...]:
    """Comma-separated secrets (several allow rotation). Raises ValueError on a bad one.

    `whsec_<base64>` is decoded as Standard Webhooks prescribes; Supabase's `v1,whsec_...`
    form is accepted too. A secret without the prefix is used as its raw bytes.
    """
    parsed = []
    text = configured.strip()
    for part in re.split(r"(?<!v1),", text):  # "v1," belongs to Supabase's secret format
        secret = part.strip()
        if secret.startswith("v1,"):
            secret = secret[3:]
        if not secret:
            continue
        raw = secret.encode()
        if secret.startswith(_SECRET_PREFIX):
            encoded = secret[len(_SECRET_PREFIX):]
            try:
                standard = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            except binascii.Error:
                raise ValueError("a whsec_ secret is not valid base64") from None
        else:
            standard = raw
        if not standard:
            raise ValueError("empty webhook secret")
        parsed.append(WebhookSecret(standard_key=standard, raw_key=raw))
    if not parsed:
        raise ValueError("no webhook secret")
    return tuple(parsed)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, refused with 400 when it is oversized or not printable ASCII."""
    value = headers.get(name)
    if value is None:
        return None
    if len(value) > MAX_HEADER_LENGTH or not value.isascii() or not value.isprintable():
        raise WebhookRejected(400, f"malformed {name} header")
    return value


def _standard_signatures(header: str) -> list[bytes]:
    """The decoded `v1` signatures of a webhook-signature header (others are ignored)."""
    found = []
    for entry in re.split(r",? +", header.strip()):
        version, separator, encoded = entry.partition(",")
        if version != "v1" or not separator or not encoded:
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if len(signature) == hashlib.sha256().digest_size:
            found.append(signature)
    return found


def sign_standard(key: bytes, delivery_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def verify_standard(headers: Mapping[str, str], body: bytes, secrets: Sequence[WebhookSecret],
                    *, now: float, tolerance: int) -> Verified:
    delivery_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp")
    signature_header = _header(headers, "webhook-signature")
    if delivery_id is None or timestamp_text is None:
        raise WebhookRejected(400, "missing webhook-id or webhook-timestamp header")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise WebhookRejected(400, "malformed webhook-id header")
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise WebhookRejected(400, "malformed webhook-timestamp header")
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > tolerance:
        raise WebhookRejected(401, "webhook timestamp outside the tolerance window")
    if not signature_header:
        raise WebhookRejected(401, "missing signature")
    presented = _standard_signatures(signature_header)
    if not presented:
        raise WebhookRejected(401, "no valid v1 signature")
    for secret in secrets:
        expected = sign_standard(secret.standard_key, delivery_id, timestamp, body)
        if any(hmac.compare_digest(expected, signature) for signature in presented):
            return Verified(delivery_id=delivery_id, scheme="standard")
    raise WebhookRejected(401, "signature does not match")


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def verify_body_only(headers: Mapping[str, str], body: bytes,
                     secrets: Sequence[WebhookSecret]) -> Verified:
    values = [value for name in BODY_SIGNATURE_HEADERS
              if (value := _header(headers, name)) is not None]
    if not values:
        raise WebhookRejected(401, "missing signature")
    match = _BODY_SIGNATURE.fullmatch(values[0].strip())
    if match is None:
        raise WebhookRejected(401, "malformed sha256 signature")
    presented = bytes.fromhex(match.group(1))
    for secret in secrets:
        expected = hmac.new(secret.raw_key, body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, presented):
            return Verified(delivery_id=f"sha256:{body_hash(body)}", scheme="body-only")
    raise WebhookRejected(401, "signature does not match")


def verify(headers: Mapping[str, str], body: bytes, secrets: Sequence[WebhookSecret], *,
           now: float, tolerance: int, allow_body_only: bool) -> Verified:
    """Standard Webhooks when its headers are present; body-only only when allowed."""
    standard = any(name in headers for name in ("webhook-id", "webhook-signature",
                                                "webhook-timestamp"))
    if standard or not allow_body_only:
        return verify_standard(headers, body, secrets, now=now, tolerance=tolerance)
    return verify_body_only(headers, body, secrets)


# --- The aiohttp side: limits, parsing, replay guard, durable effects ----------------------




log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = "5"
REPLAY_KEY_PREFIX = "webhook:seen:"


@dataclass(frozen=True)
class WebhookContext:
    """What an effect may use besides its session and payload."""

    app: web.Application
    delivery_id: str


Effect = Callable[[AsyncSession, Any, WebhookContext], Awaitable[dict[str, Any]]]
AfterCommit = Callable[[web.Application, Any], Awaitable[None]]


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook: where it listens, which secret signs it, what it does."""

    name: str
    path: str
    signed_with: str
    payload_model: type[BaseModel]
    apply: Effect
    after_commit: AfterCommit | None = None

    def configured_secret(self, settings: Settings) -> str | None:
        value = getattr(settings, self.signed_with.lower())
        return value.get_secret_value() if value is not None else None


def require_json(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise WebhookRejected(415, "Content-Type must be application/json")


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` (never buffered whole)."""
    if request.content_length is not None and request.content_length > limit:
        raise WebhookRejected(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise WebhookRejected(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(body: bytes, model: type[BaseModel]) -> BaseModel:
    try:
        return parse_json_body(model, body)
    except APIError as exc:
        raise WebhookRejected(exc.status, exc.detail, errors=exc.extra.get("errors")) from None


class ReplayCache:
    """Shares "already processed" across replicas through Redis (the database stays the truth).

    A key is written only after the delivery's transaction commits, so a crash before the commit
    can never make a retry look like a duplicate. Redis errors are logged and ignored.
    """

    def __init__(self, redis: redis_asyncio.Redis | None, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def seen(self, key: str) -> bool:
        if self._redis is None:
            return False
        try:
            return bool(await self._redis.exists(REPLAY_KEY_PREFIX + key))
        except (OSError, redis_asyncio.RedisError) as exc:
            log.warning("replay cache unavailable", error_type=type(exc).__name__)
            return False

    async def remember(self, key: str) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.set(REPLAY_KEY_PREFIX + key, "1", nx=True, ex=self._ttl)
        except (OSError, redis_asyncio.RedisError) as exc:
            log.warning("replay cache unavailable", error_type=type(exc).__name__)


async def _record_and_apply(app: web.Application, spec: WebhookSpec, verified: Verified,
                            body: bytes, payload: BaseModel) -> dict[str, Any]:
    """Record the delivery and apply its effect in one transaction; a duplicate does nothing."""
    audit_details = {"webhook": spec.name, "delivery_id": verified.delivery_id,
                     "scheme": verified.scheme}
    async with app[DATABASE].transaction() as session:
        # INSERT .. ON CONFLICT DO NOTHING: the unique key is the replay guard, and a concurrent
        # twin waits for this transaction and then finds the row, on both backends.
        inserted = await session.scalar(
            insert_ignoring_conflicts(session, WebhookDelivery)
            .values(webhook=spec.name, delivery_id=verified.delivery_id, status="processed",
                    body_sha256=body_hash(body), received_at=utcnow())
            .returning(WebhookDelivery.id))
        if inserted is None:
            await audit.record(session, "webhook.duplicate", details=audit_details)
            return {"status": "duplicate"}
        result = await spec.apply(session, payload, WebhookContext(app, verified.delivery_id))
        await audit.record(session, "webhook.accepted", details=audit_details)
    return {"status": "processed", **result}


async def _audit_rejection(app: web.Application, spec: WebhookSpec,
                           rejected: WebhookRejected) -> None:
    """Best effort, in its own transaction: a rejection must still answer if this fails."""
    try:
        async with app[DATABASE].transaction() as session:
            await audit.record(session, "webhook.rejected", details={
                "webhook": spec.name, "status": rejected.status, "reason": rejected.detail})
    except Exception as exc:
        log.warning("could not audit a webhook rejection", error_type=type(exc).__name__)


async def receive(request: web.Request, spec: WebhookSpec) -> dict[str, Any]:
    """Every check in order; returns the 200 body or raises WebhookRejected."""
    app = request.app
    settings = app[SETTINGS]
    configured = spec.configured_secret(settings)
    if configured is None:
        raise WebhookRejected(503, "webhook not configured")
    secrets = parse_secrets(configured)
    require_json(request)
    body = await read_body(request)
    verified = verify(request.headers, body, secrets, now=time.time(),
                      tolerance=settings.webhook_tolerance_seconds,
                      allow_body_only=settings.webhook_allow_body_only_signatures)
    payload = parse_payload(body, spec.payload_model)

    replay = ReplayCache(app[REDIS], ttl_seconds=2 * settings.webhook_tolerance_seconds)
    replay_key = f"{spec.name}:{verified.delivery_id}"
    if await replay.seen(replay_key):
        return {"status": "duplicate"}
    try:
        outcome = await _record_and_apply(app, spec, verified, body, payload)
    except WebhookRejected:
        raise
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("webhook deferred: database unavailable", webhook=spec.name,
                    error_type=type(exc).__name__)
        raise WebhookRejected(503, "temporarily unavailable, retry later",
                              headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    await replay.remember(replay_key)
    if outcome["status"] == "processed" and spec.after_commit is not None:
        await spec.after_commit(app, payload)
    return outcome


def webhook_handler(spec: WebhookSpec) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        metrics = request.app[METRICS]
        try:
            outcome = await receive(request, spec)
        except WebhookRejected as rejected:
            metrics.webhook_deliveries.labels(spec.name, str(rejected.status)).inc()
            await _audit_rejection(request.app, spec, rejected)
            extra = {"errors": rejected.errors} if rejected.errors else {}
            return error_response(request, rejected.status, rejected.detail,
                                  headers=rejected.headers, **extra)
        metrics.webhook_deliveries.labels(spec.name, outcome["status"]).inc()
        return web.json_response(outcome)

    handle.__name__ = f"webhook_{spec.name.replace('-', '_')}"
    return handle


# Field types the payload models share.
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
DiscordId = Annotated[int, Field(ge=1, lt=2**63)]


class Payload(BaseModel):
    """Base of every payload model: unknown fields are ignored, known ones are checked."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
