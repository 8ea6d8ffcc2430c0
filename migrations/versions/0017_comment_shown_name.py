"""comments keep the name and staff title they showed when written

Revision ID: 0017_comment_shown_name
Revises: 0016_fhir_export
Create Date: 2026-12-01 11:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0017_comment_shown_name'
down_revision: str | None = '0016_fhir_export'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commenter_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('commenter_title', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('commenter_title')
        batch_op.drop_column('commenter_name')
