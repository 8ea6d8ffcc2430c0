"""visits recorded under a grant

Revision ID: 0011_visit_grant
Revises: 0010_long_text
Create Date: 2026-12-01 07:46:03.521385
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.base


revision: str = '0011_visit_grant'
down_revision: str | None = '0010_long_text'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A visit recorded under an emergency grant never brings its patient into the physician's reach.
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("under_grant_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_visit_under_grant_id", "access_grant", ["under_grant_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_constraint("fk_visit_under_grant_id", type_="foreignkey")
        batch_op.drop_column("under_grant_id")
