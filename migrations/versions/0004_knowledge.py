"""Knowledge base: Drive documents, their passages and a full-text index; sync runs; LLM usage.

The full-text index differs by backend and is kept in step by the database itself:
- SQLite: an FTS5 table over the passages' text (external content, porter stemming) and three
  triggers that mirror every insert, update and delete of `knowledge_passages`.
- PostgreSQL: a generated `search_vector` tsvector column (english configuration) with a GIN
  index.
These objects are not in the models; `store.models.include_in_schema_comparison` hides them from
schema comparisons. Beware: a batch ("move and copy") alteration of `knowledge_passages` on
SQLite would drop the triggers; re-create them in such a migration.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_SEARCH_INDEX = (
    "CREATE VIRTUAL TABLE knowledge_passages_fts USING fts5(text, content='knowledge_passages', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_passages_fts_insert AFTER INSERT ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_passages_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER knowledge_passages_fts_delete AFTER DELETE ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_passages_fts(knowledge_passages_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER knowledge_passages_fts_update AFTER UPDATE OF text ON knowledge_passages "
    "BEGIN INSERT INTO knowledge_passages_fts(knowledge_passages_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO knowledge_passages_fts(rowid, text) VALUES (new.id, new.text); END",
)
POSTGRES_SEARCH_INDEX = (
    "ALTER TABLE knowledge_passages ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED",
    "CREATE INDEX ix_knowledge_passages_search_vector ON knowledge_passages "
    "USING gin (search_vector)",
)


def upgrade() -> None:
    op.create_table('knowledge_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('drive_file_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=True),
    sa.Column('modified_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_reason', sa.String(length=300), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('passages', sa.Integer(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_documents')),
    sa.UniqueConstraint('drive_file_id', name=op.f('uq_knowledge_documents_drive_file_id'))
    )
    op.create_table('knowledge_passages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('page', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['knowledge_documents.id'], name=op.f('fk_knowledge_passages_document_id_knowledge_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_passages'))
    )
    with op.batch_alter_table('knowledge_passages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_knowledge_passages_document_id'), ['document_id'], unique=False)

    op.create_table('drive_sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('files_total', sa.Integer(), nullable=False),
    sa.Column('downloaded', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('removed', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drive_sync_runs'))
    )
    with op.batch_alter_table('drive_sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drive_sync_runs_started_at'), ['started_at'], unique=False)

    op.create_table('llm_usage',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('guild_id', 'day', name=op.f('pk_llm_usage'))
    )

    statements = SQLITE_SEARCH_INDEX if op.get_bind().dialect.name == 'sqlite' \
        else POSTGRES_SEARCH_INDEX
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for trigger in ('insert', 'delete', 'update'):
            op.execute(f'DROP TRIGGER IF EXISTS knowledge_passages_fts_{trigger}')
        op.execute('DROP TABLE IF EXISTS knowledge_passages_fts')
    op.drop_table('llm_usage')
    with op.batch_alter_table('drive_sync_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drive_sync_runs_started_at'))

    op.drop_table('drive_sync_runs')
    with op.batch_alter_table('knowledge_passages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_knowledge_passages_document_id'))

    op.drop_table('knowledge_passages')
    op.drop_table('knowledge_documents')
