"""Token revocations: a deleted, banned or signed-out user's tokens stop working at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('token_revocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.String(length=128), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_revocations'))
    )
    with op.batch_alter_table('token_revocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_revocations_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_revocations_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_revocations_subject'), ['subject'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('token_revocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_revocations_subject'))
        batch_op.drop_index(batch_op.f('ix_token_revocations_session_id'))
        batch_op.drop_index(batch_op.f('ix_token_revocations_expires_at'))

    op.drop_table('token_revocations')
