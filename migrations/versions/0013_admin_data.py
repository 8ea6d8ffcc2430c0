"""admin data: dictionaries (admins' labels of coded values), the console menu, disabled departments

Revision ID: 0013_admin_data
Revises: 0012_operations
Create Date: 2026-12-01 10:38:07.273420
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.base


revision: str = '0013_admin_data'
down_revision: str | None = '0012_operations'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # What an admin changed about one coded value (labels, order, in use).
    op.create_table('dictionary_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dictionary', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('label_zh', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('label_en', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('in_use', sa.Boolean(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dictionary', 'code', name='uq_dictionary_entry_code'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('dictionary_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dictionary_entry_dictionary'), ['dictionary'], unique=False)

    # The console's menu tree, each entry naming the coordinates and capabilities its page needs.
    op.create_table('menu',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title_zh', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('title_en', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('icon', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('visible', sa.Boolean(), nullable=False),
    sa.Column('needs', sa.JSON(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['menu.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key'),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('menu', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_menu_parent_id'), ['parent_id'], unique=False)

    with op.batch_alter_table('department', schema=None) as batch_op:
        # existing departments stay enabled
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_column('disabled')

    with op.batch_alter_table('menu', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_menu_parent_id'))

    op.drop_table('menu')
    with op.batch_alter_table('dictionary_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dictionary_entry_dictionary'))

    op.drop_table('dictionary_entry')
