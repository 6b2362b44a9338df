"""Webhook secrets as configured: comma-separated for rotation, `whsec_<base64>` or raw text.

Pure, so configuration checks (`utils.config`) and the signature checks (`webhooks`) read a
secret the same way.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
MIN_STANDARD_KEY_BYTES = 16  # 128 bits, what Standard Webhooks generates at the least
MIN_RAW_SECRET_CHARS = 32


@dataclass(frozen=True)
class WebhookSecret:
    """One configured secret in both key forms."""

    standard_key: bytes  # for Standard Webhooks: base64-decoded after `whsec_`
    raw_key: bytes  # for body-only signatures: the configured text's UTF-8 bytes



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
        if secret.startswith(SECRET_PREFIX):
            encoded = secret[len(SECRET_PREFIX):]
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


def weakness(configured: str) -> str | None:
    """Why a configured secret (each rotation part) is too weak, or None when it is fine."""
    for secret in parse_secrets(configured):
        if secret.raw_key.startswith(SECRET_PREFIX.encode()):
            if len(secret.standard_key) < MIN_STANDARD_KEY_BYTES:
                return f"a whsec_ secret needs at least {MIN_STANDARD_KEY_BYTES * 8} bits"
        elif len(secret.raw_key) < MIN_RAW_SECRET_CHARS:
            return f"shorter than {MIN_RAW_SECRET_CHARS} characters"
    return None
