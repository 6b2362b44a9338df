"""What one webhook is: where it listens, which secret signs it, its payload, its effect.

A sender's module defines a payload model on `Payload` and an `apply` effect, and exports one
`WebhookSpec`; `webhooks.receive` runs every check before the effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from members.premium import PremiumInvalidator
from store.database import Database
from store.webhook_deliveries import DeliveryRecord
from utils.ids import USER_ID_PATTERN, DiscordId
from utils.secret_values import SecretSource
from utils.storable import refuse_unstorable


@dataclass(frozen=True)
class WebhookContext:
    """What an effect may use besides its session and payload."""

    delivery_id: str
    premium: PremiumInvalidator | None = None


Effect = Callable[[AsyncSession, Any, WebhookContext], Awaitable[dict[str, Any]]]
# PostgreSQL's one-statement path (store.webhook_ingest): the database and the delivery's
# record to write with the effect. Returns None for a replay.
DriverEffect = Callable[[Database, DeliveryRecord, Any, WebhookContext],
                        Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook: where it listens, which secret signs it, what it does."""

    name: str
    path: str
    signed_with: str
    payload_model: type[BaseModel]
    apply: Effect
    # For a sender that writes often: the same effect as `apply`, record included, in one
    # statement on PostgreSQL. SQLite (and senders without one) take `apply`.
    apply_on_postgres: DriverEffect | None = None

    def configured_secret(self, secrets: SecretSource) -> str | None:
        """Every secret accepted now, comma-separated: the configured ones and, for one TTL
        after a Secret Manager rotation, the one it replaced."""
        values = secrets.accepted_values(self.signed_with)
        return ",".join(values) if values else None


# Field types the payload models share.
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
__all__ = ["DiscordId", "Payload", "UserId", "WebhookContext", "WebhookSpec"]


class Payload(BaseModel):
    """Base of every payload model: unknown fields are ignored, known ones are checked."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """No text PostgreSQL cannot store (NUL), anywhere in the payload: 422 on both backends."""
        return refuse_unstorable(data)
