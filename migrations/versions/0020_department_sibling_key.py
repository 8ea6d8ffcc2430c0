"""department sibling key: no two departments under one parent share a name, enforced by a unique key

Revision ID: 0020_department_sibling_key
Revises: 0019_seeded_menu_entry
Create Date: 2026-12-01 14:00:00

The key is sha256 of "<parent id, 0 at the root>\\x00<name, stripped and case-folded>" (models/organisation.py keeps
it in step on every write). Rows that already share a name under one parent (two writers raced past the old check)
keep their names: each one after the first gets a key of its own, so renaming it later is checked as usual.
"""
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0020_department_sibling_key'
down_revision: str | None = '0019_seeded_menu_entry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(parent_id: int | None, name: str) -> str:
    return hashlib.sha256(f"{parent_id or 0}\x00{name.strip().casefold()}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sibling_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    department = sa.table(
        'department', sa.column('id', sa.Integer), sa.column('parent_id', sa.Integer), sa.column('name', sa.String),
        sa.column('sibling_key', sa.String),
    )
    connection = op.get_bind()
    seen: set[str] = set()
    rows = connection.execute(sa.select(department.c.id, department.c.parent_id, department.c.name).order_by(department.c.id))
    for row_id, parent_id, name in rows.all():
        key = _key(parent_id, name)
        if key in seen:
            key = hashlib.sha256(f"{key}\x00{row_id}".encode()).hexdigest()
        seen.add(key)
        connection.execute(sa.update(department).where(department.c.id == row_id).values(sibling_key=key))
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.alter_column('sibling_key', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_department_sibling_key', ['sibling_key'])


def downgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_constraint('uq_department_sibling_key', type_='unique')
        batch_op.drop_column('sibling_key')
