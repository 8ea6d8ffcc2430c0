"""seeded menu entries: the bootstrap lays down the standard menu once per entry (policies/menus.py)

Revision ID: 0019_seeded_menu_entry
Revises: 0018_operation_log
Create Date: 2026-12-01 12:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0019_seeded_menu_entry'
down_revision: str | None = '0018_operation_log'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('seeded_menu_entry',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )


def downgrade() -> None:
    op.drop_table('seeded_menu_entry')
