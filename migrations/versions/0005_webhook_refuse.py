"""PostgreSQL: `webhook_refuse(reason)`, which aborts the statement that calls it.

A webhook delivery on PostgreSQL is one statement (store/webhook_ingest.py): the replay record,
its audit row and the effect as data-modifying CTEs, committed on their own. When the effect is
refused (a reflection of another user), the statement calls this function, so the record and
the audit row go back with it, as a rolled-back transaction would take them, without the two
round trips of BEGIN and COMMIT. SQLSTATE `WH409` tells the caller which refusal it was.
SQLite takes the general path and has no use for it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATE = """
CREATE OR REPLACE FUNCTION webhook_refuse(reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'WH409', MESSAGE = reason;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS webhook_refuse(text)')
