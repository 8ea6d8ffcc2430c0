"""audit seal gaps: the event ids the sealer watches, kept as ranges instead of found again by every step

Revision ID: 0021_audit_seal_gap
Revises: 0020_department_sibling_key
Create Date: 2026-12-02 05:00:00

The sealer found an id gap below sealed events by reading every seal above its scan position, and its pending
events by an anti-join over every event above it: at a gap (a rolled-back insert, Galera's auto-increment offsets)
the position waits 120 s, and each step cost what had been sealed since (issue 23). The gaps are now rows of
their own. A database whose scan position is waiting at a gap gets its gaps here, from the seals above it.
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0021_audit_seal_gap'
down_revision: str | None = '0020_department_sibling_key'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    gap = op.create_table(
        'audit_seal_gap',
        sa.Column('first_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.Column('seen_at', models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('first_id'),
        **TABLE_ARGS,
    )
    connection = op.get_bind()
    table = sa.table(
        'audit_seal_state', sa.column('id', sa.Integer), sa.column('scan_from_id', sa.BigInteger),
        sa.column('max_sealed_event_id', sa.BigInteger), sa.column('gap_seen_at', models.base.UTCDateTime()),
    )
    state = connection.execute(
        sa.select(table.c.scan_from_id, table.c.max_sealed_event_id, table.c.gap_seen_at).where(table.c.id == 1)
    ).first()
    if state is None or state[0] >= state[1]:
        return
    scan_from, max_sealed, seen_at = int(state[0]), int(state[1]), state[2]
    sealed = connection.execute(
        sa.text("SELECT event_id FROM event_seal WHERE event_id > :low AND event_id <= :high ORDER BY event_id"),
        {"low": scan_from, "high": max_sealed},
    ).scalars()
    seen = seen_at or datetime.now(UTC)
    ranges, expected = [], scan_from + 1
    for event_id in sealed:
        if event_id > expected:
            ranges.append({"first_id": expected, "last_id": event_id - 1, "seen_at": seen})
        expected = event_id + 1
    if ranges:
        op.bulk_insert(gap, ranges)


def downgrade() -> None:
    op.drop_table('audit_seal_gap')
