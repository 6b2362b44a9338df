"""Webhook deliveries on PostgreSQL in one statement each, over the driver connection.

The general path (`webhook_deliveries.record_with_audit` and an effect on a session) costs a
session, four round trips and SQLAlchemy's execution machinery per delivery: most of a
delivery's CPU. A sender that writes often (the reflections app) gets this path instead: the
replay record, the audit row and the effect are data-modifying CTEs of one statement, prepared
once per connection by asyncpg and committed on its own: one round trip, where BEGIN and COMMIT
would add two (on loopback each send costs the server more CPU than the statement's Python).
The effect's CTEs run only when the delivery is new (`WHERE EXISTS (SELECT 1 FROM delivery)`),
so a replay writes its audit row and nothing else, exactly as the general path does; a refused
effect aborts the statement (`webhook_refuse`, migration 0005), so nothing is written, exactly
as a rolled-back transaction. The SQLite path stays the general one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.database import storable_json
from store.models import utcnow
from utils.logging import current_request_id

OWNED_BY_ANOTHER = "reflection belongs to another user"
REFUSED_SQLSTATE = "WH409"  # raised by webhook_refuse()

# $1 webhook, $2 delivery id, $3 body sha256, $4 now, $5 request id, $6 audit details (JSON)
_RECORD = """
delivery AS (
    INSERT INTO webhook_deliveries (webhook, delivery_id, status, body_sha256, received_at)
    VALUES ($1, $2, 'processed', $3, $4)
    ON CONFLICT DO NOTHING
    RETURNING id),
audit AS (
    INSERT INTO audit_log (event, created_at, request_id, details)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM delivery) THEN 'webhook.accepted'
                ELSE 'webhook.duplicate' END,
           $4, $5, $6::json)"""


@dataclass(frozen=True)
class DeliveryRecord:
    """What every delivery writes besides its effect: the replay record and its audit row."""

    webhook: str
    delivery_id: str
    body_sha256: str
    details: dict[str, Any]

    def parameters(self, now: datetime) -> tuple[Any, ...]:
        return (self.webhook, self.delivery_id, self.body_sha256, now,
                current_request_id.get(), storable_json(self.details))


# $7 external id, $8 user id, $9 text. A row of another user is left alone (the conflict's
# WHERE) and the statement is then aborted by `webhook_refuse` (migration 0005): the record
# and the audit row go back with it. The bare profile comes first (the foreign key is checked
# at the end of the statement).
_SHARE_REFLECTION = "WITH " + _RECORD + """,
profile AS (
    INSERT INTO users (id, is_premium, created_at, updated_at)
    SELECT $8, false, $4, $4 WHERE EXISTS (SELECT 1 FROM delivery)
    ON CONFLICT DO NOTHING),
reflection AS (
    INSERT INTO reflections (external_id, user_id, text, updated_at)
    SELECT $7, $8, $9, $4 WHERE EXISTS (SELECT 1 FROM delivery)
    ON CONFLICT (external_id) DO UPDATE
        SET text = excluded.text, revoked_at = NULL, updated_at = excluded.updated_at
        WHERE reflections.user_id = excluded.user_id
    RETURNING id)
SELECT EXISTS (SELECT 1 FROM delivery) AS new,
       CASE WHEN EXISTS (SELECT 1 FROM reflection) THEN true
            WHEN NOT EXISTS (SELECT 1 FROM delivery) THEN false
            ELSE webhook_refuse('""" + OWNED_BY_ANOTHER + """') END AS written
"""  # noqa: S608 (constant fragments, no input: values travel as parameters)

# $7 external id, $8 user id. Withdrawn keeps no copy of the text. Not here: recorded, found
# false; another user's (in the statement's snapshot): refused, nothing recorded.
_WITHDRAW_REFLECTION = "WITH " + _RECORD + """,
withdrawn AS (
    UPDATE reflections SET text = '', revoked_at = $4
    WHERE external_id = $7 AND user_id = $8 AND EXISTS (SELECT 1 FROM delivery)
    RETURNING id)
SELECT EXISTS (SELECT 1 FROM delivery) AS new,
       CASE WHEN EXISTS (SELECT 1 FROM withdrawn) THEN true
            WHEN NOT EXISTS (SELECT 1 FROM delivery) THEN false
            WHEN EXISTS (SELECT 1 FROM reflections WHERE external_id = $7)
                THEN webhook_refuse('""" + OWNED_BY_ANOTHER + """')
            ELSE false END AS written
"""  # noqa: S608 (constant fragments, no input: values travel as parameters)


class Refused(Exception):
    """The statement refused the effect (`webhook_refuse`): nothing was written."""


@dataclass(frozen=True)
class Written:
    """What one statement did: `new` is False for a replay (only its audit row was written);
    `written` tells whether the effect found its row."""

    new: bool
    written: bool


async def _run(connection: Any, sql: str, *parameters: Any) -> Written:
    try:
        row = await connection.fetchrow(sql, *parameters)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == REFUSED_SQLSTATE:
            raise Refused(str(exc)) from None
        raise
    return Written(row["new"], row["written"])


async def share_reflection(connection: Any, record: DeliveryRecord, *, external_id: str,
                           user_id: str, text: str) -> Written:
    """Record the delivery and upsert the reflection (and a bare profile): one statement, one
    round trip. Raises Refused when the reflection belongs to another user."""
    return await _run(connection, _SHARE_REFLECTION, *record.parameters(utcnow()),
                      external_id, user_id, text)


async def withdraw_reflection(connection: Any, record: DeliveryRecord, *, external_id: str,
                              user_id: str) -> Written:
    """Record the delivery and withdraw the reflection: one statement. `written` is False when
    it was not here; Refused when it belongs to another user."""
    return await _run(connection, _WITHDRAW_REFLECTION, *record.parameters(utcnow()),
                      external_id, user_id)
