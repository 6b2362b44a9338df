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

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from store.database import Database, is_unavailable, storable_json
from store.models import utcnow
from store.statement_batch import StatementBatch
from store.webhook_deliveries import ACCEPTED, DUPLICATE, RECORD_CTES, DeliveryRecord

OWNED_BY_ANOTHER = "reflection belongs to another user"
REFUSED_SQLSTATE = "WH409"  # raised by webhook_refuse()

# RECORD_CTES' $1-$6 (store/webhook_deliveries.py), then $7 external id, $8 user id, $9 text.
# A row of another user is left alone (the conflict's WHERE) and the statement is then aborted
# by `webhook_refuse` (migration 0005): the record and the audit row go back with it. The bare
# profile comes first (the foreign key is checked at the end of the statement).
_SHARE_REFLECTION = "WITH " + RECORD_CTES + """,
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
_WITHDRAW_REFLECTION = "WITH " + RECORD_CTES + """,
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


# The same as _SHARE_REFLECTION for many deliveries of one webhook at once: $1 webhook, $2 now,
# then one array per column. Its answer has a row per delivery, in order. The caller keeps a
# delivery id and a reflection id to one delivery per batch (statement_batch's keys). A lone
# delivery keeps _SHARE_REFLECTION: sent as a batch of one through this statement it cost the
# server 14% more CPU per delivery under load (bench/webhooks, 590 against 517 us side by side).
# Rows go into each table ordered by its key: two batches out at once that share a user (or a
# reflection) then take their row locks in the same order and wait for each other instead of
# deadlocking (PostgreSQL would abort one after deadlock_timeout; its calls would be re-run).
_SHARE_REFLECTIONS = """
WITH input AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[]) WITH ORDINALITY
        AS i(delivery_id, body_sha256, request_id, details, external_id, user_id, text, n)),
delivery AS (
    INSERT INTO webhook_deliveries (webhook, delivery_id, status, body_sha256, received_at)
    SELECT $1, delivery_id, 'processed', body_sha256, $2 FROM input ORDER BY delivery_id
    ON CONFLICT DO NOTHING
    RETURNING delivery_id),
audit AS (
    INSERT INTO audit_log (event, created_at, request_id, details)
    SELECT CASE WHEN d.delivery_id IS NULL THEN '""" + DUPLICATE + """'
                ELSE '""" + ACCEPTED + """' END, $2, i.request_id, i.details::json
    FROM input i LEFT JOIN delivery d USING (delivery_id) ORDER BY i.n),
fresh AS (SELECT i.* FROM input i JOIN delivery d USING (delivery_id)),
profile AS (
    INSERT INTO users (id, is_premium, created_at, updated_at)
    SELECT DISTINCT user_id, false, $2::timestamptz, $2::timestamptz FROM fresh
    ORDER BY user_id
    ON CONFLICT DO NOTHING),
reflection AS (
    INSERT INTO reflections (external_id, user_id, text, updated_at)
    SELECT external_id, user_id, text, $2 FROM fresh ORDER BY external_id
    ON CONFLICT (external_id) DO UPDATE
        SET text = excluded.text, revoked_at = NULL, updated_at = excluded.updated_at
        WHERE reflections.user_id = excluded.user_id
    RETURNING external_id)
SELECT d.delivery_id IS NOT NULL AS new,
       CASE WHEN r.external_id IS NOT NULL THEN true
            WHEN d.delivery_id IS NULL THEN false
            ELSE webhook_refuse('""" + OWNED_BY_ANOTHER + """') END AS written
FROM input i LEFT JOIN delivery d USING (delivery_id) LEFT JOIN reflection r USING (external_id)
ORDER BY i.n
"""  # noqa: S608 (constant fragments, no input: values travel as parameters)


class Refused(Exception):
    """The statement refused the effect (`webhook_refuse`): nothing was written."""


@dataclass(frozen=True)
class Written:
    """What one statement did: `new` is False for a replay (only its audit row was written);
    `written` tells whether the effect found its row."""

    new: bool
    written: bool


async def _run(database: Database, sql: str, *parameters: Any) -> Written:
    try:
        async with database.driver_connection() as connection:
            row = await connection.fetchrow(sql, *parameters)
    except Exception as exc:  # translated once the connection is back in the pool
        if getattr(exc, "sqlstate", None) == REFUSED_SQLSTATE:
            raise Refused(str(exc)) from None
        raise
    return Written(row["new"], row["written"])


@dataclass(frozen=True)
class ShareCall:
    record: DeliveryRecord
    external_id: str
    user_id: str
    text: str

    def keys(self) -> Sequence[Hashable]:
        return (("delivery", self.record.webhook, self.record.delivery_id),
                ("reflection", self.external_id))


async def share_reflection(database: Database, record: DeliveryRecord, *, external_id: str,
                           user_id: str, text: str) -> Written:
    """Record the delivery and upsert the reflection (and a bare profile), in one statement
    with the other deliveries in flight (store/statement_batch.py). Raises Refused when the
    reflection belongs to another user."""
    batch = database.batch("share_reflection", lambda: StatementBatch(
        lambda calls: _share_many(database, calls), lambda call: _share_one(database, call),
        ShareCall.keys, outage=is_unavailable))
    return await batch.submit(ShareCall(record, external_id, user_id, text))


async def _share_one(database: Database, call: ShareCall) -> Written:
    return await _run(database, _SHARE_REFLECTION, *call.record.parameters(utcnow()),
                      call.external_id, call.user_id, call.text)


async def _share_many(database: Database, calls: Sequence[ShareCall]) -> list[Written]:
    records = [call.record for call in calls]
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            _SHARE_REFLECTIONS, records[0].webhook, utcnow(),
            [record.delivery_id for record in records],
            [record.body_sha256 for record in records],
            [record.request_id for record in records],
            [storable_json(record.details) for record in records],
            [call.external_id for call in calls], [call.user_id for call in calls],
            [call.text for call in calls])
    return [Written(row["new"], row["written"]) for row in rows]


async def withdraw_reflection(database: Database, record: DeliveryRecord, *, external_id: str,
                              user_id: str) -> Written:
    """Record the delivery and withdraw the reflection: one statement (rare: not batched).
    `written` is False when it was not here; Refused when it belongs to another user."""
    return await _run(database, _WITHDRAW_REFLECTION, *record.parameters(utcnow()),
                      external_id, user_id)
