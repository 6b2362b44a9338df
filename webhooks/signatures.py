"""Webhook signatures, pure: bytes and headers in, a verdict out (tested exhaustively).

Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`; the signed content is
`id.timestamp.body` (raw bytes), HMAC-SHA256, base64; entries `v1,<sig>` separated by spaces or
by ", " (as Supabase sends). Body-only compatibility: `X-Hub-Signature-256` or
`X-Webhook-Signature` with `sha256=<hex>` of the raw body, keyed with the secret's UTF-8 bytes.

Every rejection is a `WebhookRejected` with a 4xx status and a short reason safe to show.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from utils.webhook_secrets import WebhookSecret, parse_secrets

__all__ = ["WebhookSecret", "parse_secrets"]  # re-exported: the signature checks take them

MAX_HEADER_LENGTH = 4096
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_BODY_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
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
class Verified:
    delivery_id: str  # the webhook-id, or `sha256:<body hash>` for body-only signatures
    scheme: str  # "standard" or "body-only"


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
