"""Signing helpers shared by the tests and the benches: one secret per sender, Standard
Webhooks and body-only signatures (made by the standardwebhooks package where it can)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

# One distinct secret per webhook: a test can prove that no secret opens another's door.
SECRETS = {
    "SUPABASE_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "PREMIUM_INVALIDATE_WEBHOOK_SECRET": "whsec_cHJlbWl1bS1zZWNyZXQtMDEyMzQ1Njc4OQ==",
    "APP_REFLECTIONS_WEBHOOK_SECRET": "whsec_cmVmbGVjdGlvbnMtc2VjcmV0LTAxMjM0NQ==",
    "FOUNDER_WEBHOOK_SECRET": "whsec_Zm91bmRlci1zZWNyZXQtMDEyMzQ1Njc4OWFi",
    "LEGAL_UPDATE_WEBHOOK_SECRET": "whsec_bGVnYWwtdXBkYXRlLXNlY3JldC0wMTIzNDU=",
}
PATHS = {
    "supabase-auth": ("/webhooks/supabase/auth", "SUPABASE_WEBHOOK_SECRET"),
    "gdpr-erasure": ("/webhooks/gdpr-erasure", "SUPABASE_WEBHOOK_SECRET"),
    "premium-invalidate": ("/webhooks/premium-invalidate", "PREMIUM_INVALIDATE_WEBHOOK_SECRET"),
    "reflections": ("/webhooks/reflections", "APP_REFLECTIONS_WEBHOOK_SECRET"),
    "founder": ("/webhooks/founder", "FOUNDER_WEBHOOK_SECRET"),
    "legal-update": ("/webhooks/legal-update", "LEGAL_UPDATE_WEBHOOK_SECRET"),
}


def settings_overrides(**extra: Any) -> dict[str, Any]:
    return {name.lower(): value for name, value in SECRETS.items()} | extra


def encode(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def standard_headers(secret: str, body: bytes, *, msg_id: str | None = None,
                     timestamp: int | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    try:
        signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC),
                                         body.decode())
    except UnicodeDecodeError:  # the package signs text only; the spec signs raw bytes
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(digest).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature, "Content-Type": "application/json"}


def github_headers(secret: str, body: bytes, header: str = "X-Hub-Signature-256") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {header: f"sha256={digest}", "Content-Type": "application/json"}
