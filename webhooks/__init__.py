"""Signed webhooks from other services: one module per sender on one `WebhookSpec`.

`signatures` holds the pure checks, `receive` the flow every route runs.
"""

from __future__ import annotations

from webhooks import (
    founder,
    gdpr_erasure,
    legal_update,
    premium_invalidate,
    reflections,
    supabase_auth,
)
from webhooks.spec import WebhookSpec

WEBHOOKS: tuple[WebhookSpec, ...] = (
    supabase_auth.SPEC,
    gdpr_erasure.SPEC,
    premium_invalidate.SPEC,
    reflections.SPEC,
    founder.SPEC,
    legal_update.SPEC,
)
