"""FHIR bulk data exports: one row per export, its progress saved after each step (a restart resumes it)

Revision ID: 0016_fhir_export
Revises: 0015_appointment
Create Date: 2026-12-01 10:49:13.402734
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.base
from sqlalchemy.dialects import mysql

revision: str = '0016_fhir_export'
down_revision: str | None = '0015_appointment'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An export's request, requester and session, status, and the progress it resumes from.
    op.create_table('fhir_export',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('types', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('since', models.base.UTCDateTime(), nullable=True),
    sa.Column('request_url', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('transaction_time', models.base.UTCDateTime(), nullable=False),
    sa.Column('total_patients', sa.Integer(), nullable=False),
    sa.Column('done_patients', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('outputs', sa.JSON(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('finished_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('expires_at', models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('fhir_export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fhir_export_requested_by_id'), ['requested_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fhir_export_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('fhir_export', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fhir_export_status'))
        batch_op.drop_index(batch_op.f('ix_fhir_export_requested_by_id'))

    op.drop_table('fhir_export')
