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
from webhooks.signatures import parse_secrets
from webhooks.spec import WebhookSpec

WEBHOOKS: tuple[WebhookSpec, ...] = (
    supabase_auth.SPEC,
    gdpr_erasure.SPEC,
    premium_invalidate.SPEC,
    reflections.SPEC,
    founder.SPEC,
    legal_update.SPEC,
)


def secret_problems(configured: dict[str, str | None]) -> list[str]:
    """Secrets that are set but unusable (e.g. `whsec_` with bad base64), by variable."""
    problems = []
    for variable, value in sorted(configured.items()):
        if value is None:
            continue
        try:
            parse_secrets(value)
        except ValueError as exc:
            problems.append(f"{variable}: {exc}")
    return problems
