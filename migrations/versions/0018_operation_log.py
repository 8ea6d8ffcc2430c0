"""operation log: the event table records a mutation's client, duration and allow-listed variables

Revision ID: 0018_operation_log
Revises: 0017_comment_shown_name
Create Date: 2026-12-01 11:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from resolvers.audit.chain import create_trigger_statements, drop_trigger_statements

revision: str = '0018_operation_log'
down_revision: str | None = '0017_comment_shown_name'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (no table copy): the append-only triggers stay as they are, and events
    # written before keep their content hashes (resolvers/audit/records.py hashes these columns only when set).
    op.add_column('event', sa.Column('is_mutation', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column(
        'event', sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=255), server_default='', nullable=False)
    )
    op.add_column('event', sa.Column('duration_ms', sa.Integer(), nullable=True))
    op.add_column('event', sa.Column('variables', sa.JSON(), nullable=True))
    # the operation log reads mutations newest first
    op.create_index('ix_event_mutation_id', 'event', ['is_mutation', 'id'], unique=False)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_trigger_statements():  # SQLite drops columns by copying the table
        op.execute(statement)
    op.drop_index('ix_event_mutation_id', table_name='event')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('variables')
        batch_op.drop_column('duration_ms')
        batch_op.drop_column('user_agent')
        batch_op.drop_column('is_mutation')
    for statement in create_trigger_statements(dialect):
        op.execute(statement)
