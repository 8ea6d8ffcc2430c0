"""persisted documents: trusted GraphQL documents of first-party clients (the mini-program)

Revision ID: 0005_persisted
Revises: 0008_totp_step
Create Date: 2026-11-26 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.base


revision: str = '0005_persisted'
down_revision: str | None = '0008_totp_step'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('persisted_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('operation_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client', 'sha256', name='uq_persisted_document_client_sha256'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('persisted_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_persisted_document_client'), ['client'], unique=False)
        batch_op.create_index(batch_op.f('ix_persisted_document_sha256'), ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('persisted_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persisted_document_sha256'))
        batch_op.drop_index(batch_op.f('ix_persisted_document_client'))
    op.drop_table('persisted_document')
