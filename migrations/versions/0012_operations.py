"""operations: scheduled jobs, runs, request figures

Revision ID: 0012_operations
Revises: 0011_visit_grant
Create Date: 2026-12-01 08:00:18.591117
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.base


revision: str = '0012_operations'
down_revision: str | None = '0011_visit_grant'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Request figures per minute, instance, grouping, key and error code (counters added by upserts).
    op.create_table('request_minute',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('minute', models.base.UTCDateTime(), nullable=False),
    sa.Column('instance', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('duration_ms', sa.BigInteger(), nullable=False),
    sa.Column('max_ms', sa.BigInteger(), nullable=False),
    sa.Column('le_5', sa.BigInteger(), nullable=False),
    sa.Column('le_10', sa.BigInteger(), nullable=False),
    sa.Column('le_25', sa.BigInteger(), nullable=False),
    sa.Column('le_50', sa.BigInteger(), nullable=False),
    sa.Column('le_100', sa.BigInteger(), nullable=False),
    sa.Column('le_250', sa.BigInteger(), nullable=False),
    sa.Column('le_500', sa.BigInteger(), nullable=False),
    sa.Column('le_1000', sa.BigInteger(), nullable=False),
    sa.Column('le_2500', sa.BigInteger(), nullable=False),
    sa.Column('le_5000', sa.BigInteger(), nullable=False),
    sa.Column('le_10000', sa.BigInteger(), nullable=False),
    sa.Column('le_inf', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('minute', 'instance', 'kind', 'key', 'code', name='uq_request_minute'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('request_minute', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_minute_minute'), ['minute'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_minute_user_id'), ['user_id'], unique=False)

    # Jobs name registered targets; a run is claimed once per (job, scheduled time) by its unique key.
    op.create_table('scheduled_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('cron', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('system', sa.Boolean(), nullable=False),
    sa.Column('misfire_policy', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('allow_overlap', sa.Boolean(), nullable=False),
    sa.Column('active_run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('run_count', sa.BigInteger(), nullable=False),
    sa.Column('schedule_from', models.base.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('scheduled_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_job_target'), ['target'], unique=False)

    op.create_table('job_run',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_for', models.base.UTCDateTime(), nullable=False),
    sa.Column('trigger', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('instance', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('started_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('heartbeat_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('finished_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('rows_affected', sa.BigInteger(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['scheduled_job.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'scheduled_for', name='uq_job_run_job_scheduled_for'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_run_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_run_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_run_status'))
        batch_op.drop_index(batch_op.f('ix_job_run_job_id'))

    op.drop_table('job_run')
    with op.batch_alter_table('scheduled_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_job_target'))

    op.drop_table('scheduled_job')
    with op.batch_alter_table('request_minute', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_minute_user_id'))
        batch_op.drop_index(batch_op.f('ix_request_minute_minute'))

    op.drop_table('request_minute')
